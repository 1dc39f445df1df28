"""A local run's front page: <run>/index.html, linking every step's report, figures and log, so
that a run opens in a browser with a double click.

The artifacts keep the names the pipeline UI knows them by (a step's `report`, no extension);
a browser needs one to render a page, so each report is also copied under <run>/reports/ as
<step>.html (or .md for the split's Markdown) and the index links those.
"""

import html
import os
import shutil

from admod.metric_names import HEADLINE
from admod.pipeline import step_log
from admod.pipeline import task_names as names
from admod.pipeline.run_summary import read_evaluation, read_run

INDEX = "index.html"
REPORTS_DIR = "reports"
# In the DAG's order: each task, what its page is, and the extension a browser needs
STEPS = ((names.CHECK_PARAMETERS, "", ""), (names.LIST_IMAGES, "", ""),
         (names.CHECK_IMAGES, "", ""), (names.GATHER_PARTS, "", ""), (names.MERGE_BUCKET, "", ""),
         (names.SPLIT, "split report: counts, formats, sizes, exclusions, near-copies", ".md"),
         (names.SPLIT_IN_ONE_TASK, "split report", ".md"),
         (names.TRAIN_HEAD, "training curves, phase 1", ".html"),
         (names.FINE_TUNE, "training curves, both phases", ".html"),
         (names.EVALUATE, "evaluation: decision, figures, curves, calibration, slices, errors",
          ".html"),
         (names.PUSH, "", ""), (names.LOG_EXPERIMENT, "", ""))
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#202124}
table{border-collapse:collapse}td,th{padding:.35em .8em;border-bottom:1px solid #dadce0;
text-align:left;vertical-align:top}code,pre{background:#f1f3f4;padding:.1em .3em}
pre{padding:.8em;white-space:pre-wrap;word-break:break-all}.blessed{color:#137333}.not-blessed{color:#c5221f}
.missing{color:#80868b}"""


def write(run_dir: str) -> str:
    """Writes <run_dir>/index.html (and the report copies it links); returns its path."""
    tasks = read_run(run_dir)
    rows = [_row(run_dir, task, what, extension)
            for task, what, extension in STEPS if os.path.isdir(os.path.join(run_dir, task))]
    body = (f"<h1>admod local run</h1><p><code>{html.escape(run_dir)}</code></p>"
            + _decision(run_dir, tasks)
            + "<h2>Steps</h2><table><tr><th>step</th><th>outcome</th><th>report</th>"
              "<th>log</th></tr>" + "".join(rows) + "</table>"
            + _tensorboard(run_dir, tasks))
    path = os.path.join(run_dir, INDEX)
    with open(path, "w") as f:
        f.write('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f"<title>admod run</title><style>{STYLE}</style></head><body>{body}</body></html>")
    return path


def _row(run_dir: str, task: str, what: str, extension: str) -> str:
    outcome = _outcome(run_dir, task)
    outcome = (html.escape(outcome) if outcome is not None
               else '<span class="missing">did not finish</span>')
    report = ""
    source = os.path.join(run_dir, task, names.REPORT)
    if what and os.path.isfile(source):
        os.makedirs(os.path.join(run_dir, REPORTS_DIR), exist_ok=True)
        copy = os.path.join(REPORTS_DIR, task + extension)
        shutil.copyfile(source, os.path.join(run_dir, copy))
        report = f'<a href="{html.escape(copy)}">{html.escape(what)}</a>'
    log = os.path.join(task, "log")
    log_link = (f'<a href="{html.escape(log)}">log</a>'
                if os.path.isfile(os.path.join(run_dir, log)) else "")
    return (f"<tr><td>{html.escape(task)}</td><td>{outcome}</td><td>{report}</td>"
            f"<td>{log_link}</td></tr>")


def _outcome(run_dir: str, task: str) -> str | None:
    """The task's key figure ("done" without one); a fan-out's, summed over its tasks. None
    when it did not finish."""
    finished = step_log.finished_outputs(run_dir, task)
    if not finished:
        return None
    figure = step_log.figure_of(task, finished) or "done"
    return f"{len(finished)} tasks: {figure}" if task in step_log.FAN_OUTS else figure


def _decision(run_dir: str, tasks: dict) -> str:
    if names.EVALUATE not in tasks:
        return ""
    evaluation = read_evaluation(run_dir)
    verdict, css = (("Blessed", "blessed") if evaluation.blessed
                    else ("Not blessed", "not-blessed"))
    figures = ", ".join(f"{name} {evaluation.scores[name]:.4f}" for name in HEADLINE)
    pushed = ""
    if names.PUSH in tasks:
        published = step_log.metadata(tasks[names.PUSH], names.PUBLISHED)
        pushed = f"<p>Pushed: <code>{html.escape(published['registry_uri'])}</code></p>"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in evaluation.reasons)
    return (f'<h2 class="{css}">{verdict}</h2><p>On {html.escape(evaluation.split)} at the '
            f"operating threshold: {html.escape(figures)}.</p><ul>{reasons}</ul>{pushed}")


def _tensorboard(run_dir: str, tasks: dict) -> str:
    if names.TRAIN_HEAD not in tasks:
        return ""
    return ("<h2>TensorBoard</h2><p>Both phases' curves, per epoch (from the repository's "
            f"folder):</p><pre>.venv/bin/tensorboard --logdir {html.escape(run_dir)}</pre>")
