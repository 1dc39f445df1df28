"""What a finished local run says: the summary printed at its end, read from the run's folder
(<run>/<task>/executor_output.json and the outputs beside it) through the typed step results."""

import glob
import json
import os

from admod import reports, results
from admod.evaluation import format_confusion_matrix
from admod.metric_names import HEADLINE, threshold_text
from admod.pipeline import task_names as names
from admod.pipeline.step_log import metadata
from admod.results import Evaluation, PhaseSummary


def read_run(run_dir: str) -> dict:
    """Each task's executor output (artifact metadata and parameter outputs), by task name."""
    tasks = {}
    for path in glob.glob(os.path.join(run_dir, "*", "executor_output.json")):
        with open(path) as f:
            tasks[os.path.basename(os.path.dirname(path))] = json.load(f)
    return tasks


def read_evaluation(run_dir: str) -> Evaluation:
    return results.read(Evaluation, os.path.join(run_dir, names.EVALUATE, names.METRICS))


def summary(run_dir: str) -> str:
    """What a person wants to read after a run."""
    tasks = read_run(run_dir)
    lines = ["", f"=== admod local run: {run_dir} ==="]
    if names.SPLIT in tasks:
        with open(os.path.join(run_dir, names.SPLIT, names.REPORT)) as f:
            lines += [f"Split report ({names.SPLIT}/{names.REPORT}):",
                      _without_group_lists(f.read()), ""]
    for task, title in ((names.TRAIN_HEAD, "Head phase"), (names.FINE_TUNE, "Fine-tune phase")):
        if task in tasks:
            lines += _phase_lines(title, PhaseSummary.from_json(metadata(tasks[task],
                                                                         names.MODEL)))
    evaluation = read_evaluation(run_dir) if names.EVALUATE in tasks else None
    if evaluation:
        lines += _evaluation_lines(evaluation)
    if names.PUSH in tasks:
        published = metadata(tasks[names.PUSH], names.PUBLISHED)
        lines.append(f"Pushed model: {published['registry_uri']}")
    elif evaluation and not evaluation.blessed:
        lines.append("Push did not run: the model was not blessed; the registry is unchanged.")
    if names.TRAIN_HEAD in tasks:
        lines.append(f"Training curves in TensorBoard: .venv/bin/tensorboard --logdir {run_dir}")
    return "\n".join(lines)


def _phase_lines(title: str, m: PhaseSummary) -> list[str]:
    lines = [f"{title}: {m.epochs_run} epochs (last epoch {m.last_epoch}), best val loss "
             f"{m.best_val_loss:.4f} / accuracy {m.best_val_accuracy:.4f} at epoch "
             f"{m.best_epoch} [weights: {m.weights_source}]"]
    if m.weights_kept == "head":  # the exception worth a line
        lines.append(f"  {reports.weights_kept(m).capitalize()}.")
    return lines


def _evaluation_lines(evaluation: Evaluation) -> list[str]:
    scores, calibration = evaluation.scores, evaluation.calibration
    lines = ["", f"Metrics on {evaluation.split} at the operating threshold "
                 f"{threshold_text(evaluation.threshold)} ({evaluation.threshold_rule}):",
             "  " + reports.headline_with_intervals(evaluation, HEADLINE)
             + f" ({evaluation.interval_level:.0%} intervals)"]
    if evaluation.optimistic:
        lines.append("  " + evaluation.optimistic)
    at_half = evaluation.scores_at_0_5
    lines.append("  at 0.5: " + ", ".join(f"{k} {at_half[k]:.4f}" for k in HEADLINE))
    lines.append(f"  Calibration {calibration.method}: ECE {scores['ece']:.4f} "
                 f"(raw score {calibration.ece_raw:.4f}) on images it was not fitted on")
    if calibration.refused:
        lines.append(f"  Calibration refused: {calibration.refused}")
    lines.append("  Confusion matrix at the operating threshold (rows: actual):")
    matrix = format_confusion_matrix(scores["confusion_matrix"])
    lines += ["  " + row for row in matrix.splitlines()]
    verdict = "BLESSED" if evaluation.blessed else "NOT BLESSED"
    return lines + ["", f"Decision: {verdict}: " + "; ".join(evaluation.reasons)]


def _without_group_lists(report: str) -> str:
    """The split report without what its file has in full: the list of near-copy groups, the
    formats, shapes and sizes, and an exclusions section that says none."""
    lines, skipping = [], False
    report = report.replace("## Exclusions\n\nNone.\n\n", "").replace("# Dataset split\n", "")
    for line in report.rstrip().splitlines():
        if line.startswith("## "):
            skipping = line.startswith(("## Near-copies", "## Formats"))
            if not line.startswith("## Formats"):
                lines.append(line[3:] + (" (listed in split/report)" if skipping else ""))
        elif not skipping and line.strip():
            lines.append(line)
    return "\n".join(lines)
