"""Reports for the pipeline UI: Markdown tables and HTML pages with matplotlib figures."""

import base64
import html
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from admod.defaults import CLASS_NAMES  # noqa: E402

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
                   conflicts: list[str], listed: int) -> str:
    lines = ["# Dataset split", "", split_table(counts).to_markdown(), "",
             f"{listed} files listed.", "", "## Exclusions", ""]
    if exclusions.empty:
        lines.append("None.")
    else:
        lines.append(exclusions.rename("files").rename_axis("reason").to_frame().to_markdown())
    for title, uris in (("Duplicates (kept once)", duplicates),
                        ("Label conflicts (excluded)", conflicts)):
        lines += ["", f"## {title}: {len(uris)}", ""]
        lines += [f"- {markdown_code(uri)}" for uri in uris[:50]]
        if len(uris) > 50:
            lines.append(f"- … and {len(uris) - 50} more (see the manifest)")
    return "\n".join(lines) + "\n"


def _figure_html(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}"/>'


def training_curves_html(history: pd.DataFrame, title: str) -> str:
    """Loss, accuracy and AUC per epoch, every phase on one epoch axis, LR drops marked."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric in zip(axes, ("loss", "accuracy", "auc")):
        for phase, rows in history.groupby("phase", sort=False):
            ax.plot(rows["epoch"], rows[metric], "o-", label=f"{phase} train")
            ax.plot(rows["epoch"], rows[f"val_{metric}"], "s--", label=f"{phase} validation")
        if "learning_rate" in history:
            drops = history["epoch"][history["learning_rate"].diff() < 0]
            for epoch in drops:
                ax.axvline(epoch, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend(fontsize=7)
    table = history.round(4).to_html(index=False)
    return (f"<html><body><h1>{html.escape(title)}</h1>{_figure_html(figure)}"
            f"<p>Dotted lines: learning-rate drops.</p>{table}</body></html>")


def _curves_figure(labels, probabilities, scores, threshold):
    from sklearn import metrics
    from sklearn.calibration import calibration_curve

    figure, (roc_ax, pr_ax, cal_ax, cm_ax) = plt.subplots(1, 4, figsize=(20, 4.5))
    fpr, tpr, _ = metrics.roc_curve(labels, probabilities)
    roc_ax.plot(fpr, tpr)
    roc_ax.plot([0, 1], [0, 1], "k:")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate",
               title=f"ROC (AUC {scores['roc_auc']:.3f})")
    precision, recall, _ = metrics.precision_recall_curve(labels, probabilities)
    pr_ax.plot(recall, precision)
    pr_ax.plot([scores["recall"]], [scores["precision"]], "ro", label=f"threshold {threshold:.3f}")
    pr_ax.set(xlabel="recall (not allowed)", ylabel="precision (not allowed)",
              title=f"Precision-recall (AP {scores['pr_auc']:.3f})")
    pr_ax.legend()
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="uniform")
    cal_ax.plot(predicted, observed, "o-")
    cal_ax.plot([0, 1], [0, 1], "k:")
    cal_ax.set(xlabel="predicted probability", ylabel="observed share not allowed",
               title=f"Calibration (Brier {scores['brier']:.3f}, ECE {scores['ece']:.3f})")
    cm_ax.imshow(scores["confusion_matrix"], cmap="Blues")
    darkest = max(map(max, scores["confusion_matrix"]))
    for (i, j), value in pd.DataFrame(scores["confusion_matrix"]).stack().items():
        cm_ax.text(j, i, str(value), ha="center", va="center",
                   color="white" if value > darkest / 2 else "black")
    names = [READABLE[n] for n in CLASS_NAMES]
    cm_ax.set_xticks([0, 1], [f"pred {n}" for n in names])
    cm_ax.set_yticks([0, 1], names)
    cm_ax.set_title("Confusion matrix (rows: actual)")
    return figure


def _thumbnail(data: bytes, size: int = 160) -> str:
    from PIL import Image

    from admod.images import normalise

    image = normalise(Image.open(io.BytesIO(data)))
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return base64.b64encode(out.getvalue()).decode()


def _gallery_html(gallery) -> str:
    if not gallery:
        return "<p>No misclassified images.</p>"
    cells = "".join(
        f'<figure style="display:inline-block;margin:4px;width:170px">'
        f'<img src="data:image/jpeg;base64,{_thumbnail(data)}"/><figcaption>'
        f"{READABLE[CLASS_NAMES[label]]}, p(not allowed) {p:.3f}<br/><small>{html.escape(uri)}</small>"
        f"</figcaption></figure>" for data, uri, label, p in gallery)
    return f"<div>{cells}</div>"


def evaluation_html(result: dict, scored: pd.DataFrame, table: pd.DataFrame, gallery) -> str:
    """Decision and reasons, metrics at the operating threshold and at 0.5, curves, the
    threshold table and the most confidently wrong images."""
    scores, threshold = result["scores"], result["threshold"]
    figure = _curves_figure(scored["label"], scored["probability"], scores, threshold)
    names = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier", "ece")
    rows = [{"metric": n, f"threshold {threshold:.3f}": scores[n],
             "threshold 0.5": result["scores_at_0_5"][n],
             **({"champion": result["champion_scores"][n]} if result["champion_scores"] else {})}
            for n in names]
    per_class = pd.DataFrame(scores["per_class"]).T.round(4).to_html()
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result["reasons"])
    verdict = "BLESSED" if result["blessed"] else "NOT BLESSED"
    champion = result["champion"] or "none yet"
    return (
        f"<html><body><h1>Evaluation on {result['split']}: {verdict}</h1><ul>{reasons}</ul>"
        f"<p>Operating threshold {threshold:.4f} ({html.escape(result['threshold_rule'])}); "
        f"champion: {html.escape(champion)}.</p>"
        f"{pd.DataFrame(rows).round(4).to_html(index=False)}"
        f"<h2>Curves</h2>{_figure_html(figure)}"
        f"<h2>Per class</h2>{per_class}"
        f"<h2>Thresholds</h2>{table.round(4).to_html(index=False)}"
        f"<h2>Most confidently wrong</h2>{_gallery_html(gallery)}</body></html>")


def model_card(info: dict, result: dict, data: dict, lineage: dict) -> str:
    scores = result["scores"]
    counts = pd.DataFrame({name: d["class_counts"] for name, d in data.items()}).rename(index=READABLE)
    lines = [
        "# Model card: admod ResNet50 ad classifier", "",
        "Classifies an ad image as allowed or **not allowed** (positive class).", "",
        "## Data", "", counts.to_markdown(), "",
        "## Model", "",
        f"- image size {info['image_size']}, preprocessing: {info['preprocessing']}",
        f"- weights: {markdown_code(info['weights_source'])}; fine-tuning from: "
        f"{info.get('unfreeze', 'all')}",
        f"- epochs: head {info.get('head_epochs_run', '?')}, fine-tune {info['epochs_run']} "
        f"(last epoch {info['last_epoch']}); class weights {info.get('class_weights') or 'none'}",
        "", "## Metrics", "",
        f"On {result['split']}, operating threshold {result['threshold']:.4f} "
        f"({result['threshold_rule']}):", "",
        "| metric | value |", "|---|---|",
        *[f"| {n} | {scores[n]:.4f} |" for n in
          ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier", "ece")],
        "", f"Confusion matrix (rows actual allowed / not allowed): {scores['confusion_matrix']}",
        "", "## Decision", "", *[f"- {r}" for r in result["reasons"]],
        "", "## Lineage", "", *[f"- {k}: {markdown_code(v)}" for k, v in lineage.items()], "",
    ]
    return "\n".join(lines)
