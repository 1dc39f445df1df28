"""Reports for the pipeline UI: Markdown tables and HTML pages with matplotlib figures."""

import base64
import html
import io
import re

from matplotlib.figure import Figure
import pandas as pd

from admod.defaults import CLASS_NAMES
from admod.metric_names import PHASE_METRICS, SCORES, THRESHOLD_FREE, threshold_text
from admod.images import DUPLICATE, LABEL_CONFLICT, printable
from admod.results import Evaluation, ModelInfo, PhaseSummary

READABLE = {"allowed_ads": "Allowed", "not_allowed_ads": "Not allowed"}
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def markdown_code(text: str) -> str:
    """`text` as a Markdown code span it cannot break out of: a fence longer than any run of
    backticks inside, control characters shown escaped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula: a leading =, +, -, @, tab or carriage
    return is quoted with an apostrophe (OWASP's advice for CSV injection)."""
    text = str(text)
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


def split_table(counts: pd.DataFrame) -> pd.DataFrame:
    """The method's "Dataset Split" table: splits as rows, classes and total as columns."""
    table = counts.T.rename(columns=READABLE)
    table = table[(table.sum(axis=1) > 0) | (table.index != "test")]
    table["Total"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    table.index = table.index.str.capitalize()
    return table


def split_markdown(counts: pd.DataFrame, exclusions: pd.Series, duplicates: list[str],
                   conflicts: list[str], reconciled: dict[str, int],
                   near_copy_groups: list[list[str]] = (), composition: dict | None = None
                   ) -> str:
    """The split table, the reconciled counts, the images' formats, shapes and sizes per split
    (`composition`: slices.composition's), the exclusions, and the first duplicates and label
    conflicts by name (`duplicates` and `conflicts` may be the first few: the totals come from
    `exclusions`)."""
    lines = ["# Dataset split", "", split_table(counts).to_markdown(), "",
             reconciled_line(reconciled), *_composition_markdown(composition or {}),
             "", "## Exclusions", ""]
    if exclusions.empty:
        lines.append("None.")
    else:
        lines.append(exclusions.rename("files").rename_axis("reason").to_frame().to_markdown())
    named = (("Duplicates (kept once)", DUPLICATE, duplicates),
             ("Label conflicts (excluded)", LABEL_CONFLICT, conflicts))
    lines += _near_copies_markdown(near_copy_groups)
    if not any(int(exclusions.get(reason, 0)) or uris for _, reason, uris in named):
        return "\n".join(lines + ["", "No duplicates, no label conflicts."]) + "\n"
    for title, reason, uris in named:
        total = int(exclusions.get(reason, 0))
        lines += ["", f"## {title}: {total}", ""]
        lines += [f"- {markdown_code(uri)}" for uri in uris[:50]]
        if total > min(len(uris), 50):
            lines.append(f"- … and {total - min(len(uris), 50)} more (see the manifest)")
    return "\n".join(lines) + "\n"


def _composition_markdown(composition: dict) -> list[str]:
    """Per dimension, the images of each split by value (a split without images left out)."""
    if not composition:
        return []
    lines = ["", "## Formats, shapes and sizes", "",
             "Images per split (shape: banner when width/height is 1.5 or more, portrait when "
             "height/width is 1.25 or more, else square):"]
    for dimension, table in composition.items():
        table = table.loc[:, table.sum() > 0].rename(columns=str.capitalize)
        lines += ["", table.rename_axis(dimension).to_markdown()]
    return lines


def _near_copies_markdown(groups: list[list[str]], shown: int = 20) -> list[str]:
    """The near-copy groups (each kept in one split), the first `shown` by name."""
    lines = ["", f"## Near-copies: {len(groups)} groups of {sum(map(len, groups))} images, "
                 "each group in one split", ""]
    if not groups:
        return lines + ["None found (admod.near_copies: pHash within 10 bits)."]
    lines += ["- " + ", ".join(markdown_code(uri) for uri in group) for group in groups[:shown]]
    if len(groups) > shown:
        lines.append(f"- … and {len(groups) - shown} more groups (see the manifest's "
                     "near_copy_key)")
    return lines


def reconciled_line(n: dict[str, int]) -> str:
    """Every hand-over's count in one line: each stage accounted for the one before it."""
    return (f"Reconciled: {n['listed']} listed = {n['checked']} checked = {n['usable']} usable "
            f"+ {n['excluded_by_check']} excluded by the check; {n['merged']} merged = "
            f"{n['train']} train + {n['validation']} validation + {n['test']} test + "
            f"{n['duplicate']} duplicates + {n['label_conflict']} label conflicts; each split's "
            "shards hold its images' records.")


# Self-contained pages: the KFP UI shows an HTML artifact in an iframe, so styles are inline
# and plots are embedded PNGs that shrink to the page's width.
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#202124;
  margin:16px;max-width:1400px;line-height:1.4}
h1{font-size:22px;margin:0 0 8px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #dadce0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{padding:4px 12px;border-bottom:1px solid #e8eaed;text-align:right;
  font-variant-numeric:tabular-nums;white-space:nowrap}
th{background:#f1f3f4;font-weight:600}
th:first-child,td:first-child{text-align:left}
.scroll{overflow-x:auto;max-width:100%}
.decision{padding:10px 16px;border-radius:6px;margin:8px 0 16px}
.decision h1{margin:0 0 4px}.decision ul{margin:4px 0}
.blessed{background:#e6f4ea;border-left:6px solid #188038}
.not-blessed{background:#fce8e6;border-left:6px solid #d93025}
.optimistic{background:#fef7e0;border-left:6px solid #f9ab00;padding:8px 16px}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.plots img{max-width:100%;height:auto}
.plots .plot{flex:0 1 400px;max-width:100%}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:10px}
.gallery figure{margin:0;padding:6px;border:1px solid #dadce0;border-radius:6px;min-width:0}
.gallery .thumb{height:160px;display:flex;align-items:center;justify-content:center;
  background:#f8f9fa}
.gallery img{display:block;max-width:100%;max-height:160px;object-fit:contain}
h3{font-size:14px;margin:16px 0 6px}
.gallery figcaption{font-size:12px;margin-top:4px}
.gallery .name{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.note{color:#5f6368;font-size:13px}
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>")


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    """An HTML table (every cell escaped by pandas), numbers with 4 decimals, right-aligned."""
    return '<div class="scroll">' + frame.to_html(
        index=index, border=0, escape=True, na_rep="-",
        float_format=lambda value: f"{value:.4f}") + "</div>"


def _subplots(width: float, height: float):
    """A figure and its axes, without pyplot: no backend chosen, no global state (the process
    that imports admod keeps its matplotlib as it was)."""
    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def _figure_html(figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return (f'<div class="plot"><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}"/></div>')


def _plots(*figures: str) -> str:
    return f'<div class="plots">{"".join(figures)}</div>'


def training_html(history: pd.DataFrame, summary: PhaseSummary) -> str:
    """The phase's best epoch, then loss (log scale), accuracy, AUC and the learning rate per
    epoch, every phase on one epoch axis, the best epoch and the learning-rate drops marked;
    then the epoch table."""
    drops = []
    if "learning_rate" in history:  # within a phase: a new phase's own rate is no drop
        for _, rows in history.groupby("phase", sort=False):
            drops += list(rows["epoch"][rows["learning_rate"].diff() < 0])
    plots = [_figure_html(_curve_figure(history, metric, summary.best_epoch, drops), metric)
             for metric in ("loss", "accuracy", "auc")]
    if "learning_rate" in history:
        plots.append(_figure_html(_learning_rate_figure(history), "learning rate"))
    phase = str(summary.phase)
    best = pd.DataFrame([{name.replace("_", " "): getattr(summary, name)
                          for name in PHASE_METRICS}])
    columns = ["phase", "epoch"] + [c for c in history.columns if c not in ("phase", "epoch")]
    marks = "Solid: training; dashed: validation; green: the best epoch, whose weights are kept"
    if drops:
        marks += "; grey dotted: where the learning rate dropped"
    return _page(f"Training: {phase}", (
        f"<h1>Training: {html.escape(phase)}</h1>{_table(best)}{_weights_kept(summary)}"
        f"<h2>Curves</h2>{_plots(*plots)}"
        f'<p class="note">{marks}. Epochs count across both phases; the loss is on a log '
        "scale.</p>"
        f"<h2>Epochs</h2>{_table(_readable_rates(history[columns]))}"))


def _readable_rates(history: pd.DataFrame) -> pd.DataFrame:
    """The learning rate as 1e-05, not 0.0000."""
    if "learning_rate" not in history:
        return history
    return history.assign(learning_rate=history["learning_rate"].map("{:.2g}".format))


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def _curve_figure(history: pd.DataFrame, metric: str, best_epoch: int, drops: list):
    figure, ax = _subplots(4.8, 3.4)
    for phase, rows in history.groupby("phase", sort=False):
        line, = ax.plot(rows["epoch"], rows[metric], "o-", label=f"{phase} train")
        ax.plot(rows["epoch"], rows[f"val_{metric}"], "s--", color=line.get_color(),
                label=f"{phase} validation")
    ax.axvline(best_epoch, color="#188038", linewidth=1.5, label=f"best epoch {best_epoch}")
    for epoch in drops:
        ax.axvline(epoch, color="grey", linestyle=":", linewidth=1)
    if metric == "loss":
        ax.set_yscale("log")
    _epoch_axis(ax)
    ax.set_title(metric)
    ax.legend(fontsize=7)
    return figure


def _learning_rate_figure(history: pd.DataFrame):
    figure, ax = _subplots(4.8, 3.4)
    for phase, rows in history.groupby("phase", sort=False):
        ax.plot(rows["epoch"], rows["learning_rate"], "o-", label=phase)
    ax.set_yscale("log")
    _epoch_axis(ax)
    ax.set_title("learning rate")
    ax.legend(fontsize=7)
    return figure


def weights_kept(summary: PhaseSummary) -> str:
    """Which phase's weights the step hands on, in words ('' before fine-tuning)."""
    if summary.weights_kept is None:
        return ""
    if summary.weights_kept == "head":
        return (f"the head's weights are kept: no fine-tuning epoch beat its val_loss "
                f"{summary.kept_val_loss:.4f}")
    return (f"fine-tuning's weights are kept: val_loss {summary.kept_val_loss:.4f}, below "
            "the head's")


def _weights_kept(summary: PhaseSummary) -> str:
    kept = weights_kept(summary)
    return f'<p class="note"><strong>{html.escape(kept.capitalize())}.</strong></p>' if kept else ""


def _roc_figure(labels, probabilities, scores, threshold):
    """The ROC curve, with the operating point: where the model's decisions are."""
    from sklearn import metrics

    figure, ax = _subplots(4.6, 4)
    fpr, tpr, _ = metrics.roc_curve(labels, probabilities)
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], "k:")
    (true_negatives, false_positives), (false_negatives, true_positives) = (
        scores["confusion_matrix"])
    ax.plot([false_positives / max(true_negatives + false_positives, 1)],
            [true_positives / max(false_negatives + true_positives, 1)], "ro",
            label=f"threshold {threshold_text(threshold)}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)",
           title=f"ROC (AUC {scores['roc_auc']:.3f})")
    ax.legend(loc="lower right")
    return figure


def _precision_recall_figure(labels, probabilities, scores, threshold):
    from sklearn import metrics

    figure, ax = _subplots(4.6, 4)
    precision, recall, _ = metrics.precision_recall_curve(labels, probabilities)
    ax.plot(recall, precision)
    ax.plot([scores["recall"]], [scores["precision"]], "ro",
            label=f"threshold {threshold_text(threshold)}")
    ax.set(xlabel="recall (not allowed)", ylabel="precision (not allowed)",
           title=f"Precision-recall (AP {scores['pr_auc']:.3f})")
    ax.legend()
    return figure


def _calibration_figure(labels, curves: dict):
    """Reliability curves, one per {name: (probabilities, ECE)}."""
    from sklearn.calibration import calibration_curve

    figure = Figure(figsize=(4.6, 5.4))
    ax, counts = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    bins = [i / 10 for i in range(11)]
    for name, (probabilities, ece) in curves.items():
        observed, predicted = calibration_curve(labels, probabilities, n_bins=10,
                                                strategy="uniform")
        line, = ax.plot(predicted, observed, "o-", label=f"{name} (ECE {ece:.3f})")
        counts.hist(probabilities, bins=bins, histtype="step", color=line.get_color())
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    ax.set(ylabel="observed share not allowed", title="Calibration (reliability)")
    figure.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, 0.0), frameon=False)
    counts.set(xlabel="predicted probability (10 bins)", ylabel="images")
    figure.subplots_adjust(hspace=0.08)
    return figure


def _calibration_html(result: Evaluation, scored: pd.DataFrame) -> str:
    """The calibration's map and figures, and the reliability curves before and after."""
    calibration, scores = result.calibration, result.scores
    held_out = ("test" if result.split == "test" else
                "validation, each image calibrated by a fit on the other folds")
    table = pd.DataFrame([
        {"": "raw score", "Brier": calibration.brier_raw, "ECE": calibration.ece_raw},
        {"": f"served ({calibration.method})", "Brier": scores["brier"], "ECE": scores["ece"]}])
    refused = (f'<p class="note">Calibration refused: {html.escape(calibration.refused)}</p>'
               if calibration.refused else "")
    curves = {"raw": (scored["raw_probability"], calibration.ece_raw)}
    if calibration.method != "none":
        curves[f"calibrated ({calibration.method})"] = (scored["held_out_probability"],
                                                        scores["ece"])
    fitted = {"none": "none: the served probability is the model's raw score",
              "temperature": f"temperature {calibration.temperature:.4g} (the raw logit "
                             "divided by it)",
              "platt": f"Platt scaling, sigmoid({calibration.slope:.4g} × logit "
                       f"{calibration.intercept:+.4g})"}.get(calibration.method,
                                                             calibration.method)
    return (f"<p>Calibration: {html.escape(fitted)}, fitted on validation; the operating "
            f"threshold {threshold_text(result.threshold)} is "
            f"{threshold_text(calibration.raw_threshold)} on the raw score. Figures on "
            f"{held_out}. Below the curves, how many images fall in each bin.</p>{refused}"
            + _plots(f"<div>{_table(table)}</div>",
                     _figure_html(_calibration_figure(scored["label"], curves),
                                  "reliability curves")))


def _confusion_figure(matrix, threshold):
    figure, ax = _subplots(4.6, 4)
    ax.imshow(matrix, cmap="Blues")
    darkest = max(map(max, matrix))
    for (i, j), value in pd.DataFrame(matrix).stack().items():
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14,
                color="white" if value > darkest / 2 else "black")
    names = [READABLE[n] for n in CLASS_NAMES]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set(xlabel="predicted", ylabel="actual",
           title=f"Confusion matrix at threshold {threshold_text(threshold)}")
    return figure


def _thumbnail(data: bytes, size: int = 320) -> str:
    from PIL import Image

    from admod.images import normalise

    image = normalise(Image.open(io.BytesIO(data)))
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return base64.b64encode(out.getvalue()).decode()


def _gallery_html(gallery) -> str:
    """The wrong decisions, false positives then false negatives, each thumbnail (its aspect
    ratio kept) captioned with the actual and predicted class, the served probability and the
    file's short name; the full uri shows on hover."""
    if not gallery:
        return "<p>No misclassified images.</p>"
    groups = []
    for label, title in ((0, "False positives: allowed ads the model would block"),
                         (1, "False negatives: not-allowed ads the model would let through")):
        cells = [_gallery_cell(data, uri, actual, p)
                 for data, uri, actual, p in gallery if actual == label]
        if cells:
            groups.append(f"<h3>{title} ({len(cells)})</h3>"
                          f'<div class="gallery">{"".join(cells)}</div>')
    return "".join(groups)


def _gallery_cell(data: bytes, uri: str, actual: int, p: float) -> str:
    uri = printable(str(uri))
    name = html.escape(uri.rstrip("/").rsplit("/", 1)[-1])
    actual_name, predicted_name = (READABLE[CLASS_NAMES[i]] for i in (actual, 1 - actual))
    return (f'<figure title="{html.escape(uri)}"><div class="thumb"><img alt="{name}" '
            f'src="data:image/jpeg;base64,{_thumbnail(data)}"/></div><figcaption>'
            f"actual <b>{actual_name}</b>, predicted <b>{predicted_name}</b><br>"
            f"p(not allowed) {p:.3f}"
            f'<span class="name">{name}</span></figcaption></figure>')


def evaluation_html(result: Evaluation, scored: pd.DataFrame, table: pd.DataFrame,
                    gallery) -> str:
    """The decision and its reasons first; then metrics at the operating threshold and at 0.5
    (and the champion's), the confusion matrix, curves, per-class figures, the threshold table
    and the most confidently wrong images."""
    scores, threshold = result.scores, result.threshold
    labels, probabilities = scored["label"], scored["probability"]
    names = SCORES
    champion = result.champion or "none yet"
    columns = {f"challenger at {threshold_text(threshold)}": scores,
               "challenger at 0.5": result.scores_at_0_5}
    if result.champion_scores:
        columns["champion"] = result.champion_scores
    # A threshold-free figure once, in the operating threshold's column
    metrics = pd.DataFrame({"metric": names, **{
        title: [s[n] if i == 0 or title == "champion" or n not in THRESHOLD_FREE else ""
                for n in names] for i, (title, s) in enumerate(columns.items())}})
    metrics.insert(2, f"{_level(result)} interval", [_interval(result, n) for n in names])
    verdict, css = ("Blessed", "blessed") if result.blessed else ("Not blessed", "not-blessed")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
    per_class = pd.DataFrame(scores["per_class"]).T.drop(index="accuracy", errors="ignore")
    per_class = per_class.rename(index=READABLE).rename_axis("class").reset_index()
    per_class["support"] = per_class["support"].astype(int)
    split_name = html.escape(str(result.split))
    body = (
        f'<div class="decision {css}"><h1>{verdict}: evaluation on {split_name}</h1>'
        f"<ul>{reasons}</ul></div>"
        + (f'<p class="optimistic">{html.escape(result.optimistic)}</p>'
           if result.optimistic else "")
        + f"<p>{scores['count']} images. Operating threshold {threshold_text(threshold)} "
        f"({html.escape(result.threshold_rule)}); champion: {html.escape(champion)}.</p>"
        '<p class="note">Challenger: the model this run trained. Champion: the registry\'s '
        "current model, scored on the same images as it serves them. "
        f"{', '.join(THRESHOLD_FREE)} do not depend on the threshold: one value each.</p>"
        + _plots(f"<div>{_table(metrics)}</div>",
                 _figure_html(_confusion_figure(scores["confusion_matrix"], threshold),
                              "confusion matrix"))
        + "<h2>Curves</h2>"
        + _plots(_figure_html(_roc_figure(labels, probabilities, scores, threshold),
                              "ROC curve"),
                 _figure_html(_precision_recall_figure(labels, probabilities, scores, threshold),
                              "precision-recall curve"))
        + _slices_html(result)
        + f"<h2>Calibration</h2>{_calibration_html(result, scored)}"
        + f"<h2>Per class</h2>{_table(per_class)}"
        + f"<h2>Thresholds</h2>{_table(table)}"
        + f"<h2>Most confidently wrong</h2>{_gallery_html(gallery)}")
    return _page(f"Evaluation: {verdict}", body)


def _level(result: Evaluation) -> str:
    return f"{result.interval_level:.0%}"


def _interval(result: Evaluation, name: str) -> str:
    """'[low, high]' of a figure, '' for one without an interval (Brier)."""
    low_high = result.interval(name)
    return f"[{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else ""


def headline_with_intervals(result: Evaluation, names) -> str:
    """'accuracy 0.9109 [0.8500, 0.9600], ...': the figures a summary line shows."""
    from admod.uncertainty import with_interval

    return ", ".join(f"{n} {with_interval(result.scores[n], result.interval(n))}"
                     if result.interval(n) else f"{n} {result.scores[n]:.4f}" for n in names)


def _slices_figure(slices: list[dict], metric: str):
    shown = [s for s in slices if metric in s["figures"]]
    figure, ax = _subplots(5.2, 0.3 * len(shown) + 1.0)
    names = [f"{s['dimension']}={s['value']} (n={s['count']})" for s in shown]
    values = [s["figures"][metric] for s in shown]
    lows = [v - s["intervals"][metric][0] for v, s in zip(values, shown, strict=True)]
    highs = [s["intervals"][metric][1] - v for v, s in zip(values, shown, strict=True)]
    colours = ["#1a73e8" if s["gated"] else "#9aa0a6" for s in shown]
    ax.barh(range(len(shown)), values, xerr=[lows, highs], color=colours, capsize=3)
    ax.set_yticks(range(len(shown)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel=f"{metric} (95% interval; grey: too few images to gate)", xlim=(0, 1.02),
           title=f"{metric} per slice")
    return figure


def _slices_table(slices: list[dict], names=("accuracy", "recall", "roc_auc")) -> pd.DataFrame:
    """The slices as a table: count, figures as 'value [low, high]', gated or not."""
    from admod.uncertainty import with_interval

    rows = []
    for s in slices:
        row = {"slice": f"{s['dimension']}={s['value']}", "images": s["count"],
               "not allowed": s["not_allowed"]}
        for name in names:
            row[name] = (with_interval(s["figures"][name], s["intervals"][name])
                         if name in s["figures"] else "")
        difference = s.get("champion_difference")
        row["champion − model"] = (with_interval(difference["difference"],
                                                 difference["interval"], signed=True)
                                   if difference else "")
        row["gated"] = "yes" if s["gated"] else "no (too few)"
        rows.append(row)
    return pd.DataFrame(rows)


def _slices_html(result: Evaluation) -> str:
    slices = result.slices
    if not slices:
        return ""
    metric = "roc_auc" if any("roc_auc" in s["figures"] for s in slices) else "accuracy"
    return ("<h2>Slices</h2><p>By image format, shape (banner: width/height at least 1.5; "
            "portrait: height/width at least 1.25; else square) and size, from the split's "
            "manifest. Only slices with both classes and enough images are gated.</p>"
            + _table(_slices_table(slices))
            + _plots(_figure_html(_slices_figure(slices, metric), "figures per slice")))


def _calibration_line(result: Evaluation) -> str:
    calibration, scores = result.calibration, result.scores
    how = ("is the raw score, uncalibrated" if calibration.method == "none" else
           f"is calibrated by {calibration.method} (slope {calibration.slope:.4g}, "
           f"intercept {calibration.intercept:.4g}, fitted on validation)")
    line = (f"The served probability {how}: ECE {scores['ece']:.4f} (raw score "
            f"{calibration.ece_raw:.4f}), Brier {scores['brier']:.4f} (raw "
            f"{calibration.brier_raw:.4f}), on images the calibration was not fitted on.")
    if calibration.refused:
        line += f" Calibration refused: {html.escape(calibration.refused)}"
    return line


def model_card(info: ModelInfo, result: Evaluation, data: dict, lineage: dict) -> str:
    scores = result.scores
    counts = pd.DataFrame({name: d["class_counts"] for name, d in data.items()})
    counts = counts.rename(index=READABLE)
    lines = [
        "# Model card: admod ResNet50 ad classifier", "",
        "Classifies an ad image as allowed or **not allowed** (positive class).", "",
        "## Data", "", counts.to_markdown(), "",
        "## Model", "",
        f"- image size {info.image_size}, preprocessing: {info.preprocessing}",
        f"- weights: {markdown_code(info.weights_source)}; fine-tuning from: {info.unfreeze}",
        f"- epochs: head {info.head_epochs_run}, fine-tune {info.epochs_run} "
        f"(last epoch {info.last_epoch}); class weights {info.class_weights or 'none'}",
        "", "## Metrics", "",
        f"On {result.split}, operating threshold {threshold_text(result.threshold)} "
        f"({html.escape(result.threshold_rule)}):", "",
        *([f"**{result.optimistic}**", ""] if result.optimistic else []),
        f"| metric | value | {_level(result)} interval |", "|---|---|---|",
        *[f"| {n} | {scores[n]:.4f} | {_interval(result, n)} |" for n in SCORES],
        "", f"Confusion matrix (rows actual allowed / not allowed): {scores['confusion_matrix']}",
        "", "## Calibration", "", _calibration_line(result),
        "", "## Decision", "", *[f"- {html.escape(r)}" for r in result.reasons],
        "", *_use_and_limitations(info, result, data),
        "", "## Lineage", "", *[f"- {k}: {markdown_code(v)}" for k, v in lineage.items()], "",
    ]
    return "\n".join(lines)


def _use_and_limitations(info: ModelInfo, result: Evaluation, data: dict) -> list[str]:
    """What the model is for, and what its figures do not say."""
    images = sum(sum(d["class_counts"].values()) for d in data.values())
    limits = [
        f"- It learnt from the {images} images of its training and validation splits only: ads "
        "unlike them (other formats, languages, products, creatives) may be scored wrongly, "
        "and the figures above say nothing about them.",
        "- It sees the image alone: the ad's text, landing page and advertiser are not part of "
        "the decision.",
    ]
    if "random" in info.weights_source:
        limits.append("- **Trained from random initialisation, not ImageNet weights**: a demo "
                      "model, far below what the method reaches; do not serve it.")
    if result.optimistic:
        limits.append("- Its figures come from the validation images that also chose its best "
                      "epoch, threshold and calibration: expect somewhat lower on new ads.")
    return ["## Intended use", "",
            "A first pass of ad moderation: an ad scored not allowed at or above the operating "
            "threshold goes to review or is held; one below it is let through. The served "
            "probability is calibrated on validation, so a different threshold can be chosen "
            "for another precision and recall (the evaluation report's threshold table).", "",
            "## Limitations", "", *limits]
