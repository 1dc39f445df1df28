"""Reports for the pipeline UI: Markdown tables and HTML pages with matplotlib figures."""

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from admod.defaults import CLASS_NAMES  # noqa: E402

READABLE = {"allowed_ads": "Allowed", "not_allowed_ads": "Not allowed"}


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
        lines += [f"- `{uri}`" for uri in uris[:50]]
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


def evaluation_html(scores: dict, decision, roc: dict) -> str:
    figure, (roc_ax, cm_ax) = plt.subplots(1, 2, figsize=(10, 4))
    roc_ax.plot(roc["fpr"], roc["tpr"])
    roc_ax.plot([0, 1], [0, 1], "k:")
    roc_ax.set_xlabel("false positive rate")
    roc_ax.set_ylabel("true positive rate")
    roc_ax.set_title(f"ROC (AUC {scores['roc_auc']:.3f})")
    cm_ax.imshow(scores["confusion_matrix"], cmap="Blues")
    for (i, j), value in pd.DataFrame(scores["confusion_matrix"]).stack().items():
        cm_ax.text(j, i, str(value), ha="center", va="center")
    labels = [READABLE[n] for n in CLASS_NAMES]
    cm_ax.set_xticks([0, 1], [f"pred {n}" for n in labels])
    cm_ax.set_yticks([0, 1], labels)
    cm_ax.set_title("Confusion matrix")
    rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in scores.items()
                   if isinstance(v, float))
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in decision.reasons)
    verdict = "BLESSED" if decision.blessed else "NOT BLESSED"
    return (f"<html><body><h1>Evaluation: {verdict}</h1><ul>{reasons}</ul>"
            f"<table>{rows}</table>{_figure_html(figure)}</body></html>")
