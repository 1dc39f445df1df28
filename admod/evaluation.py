"""Metrics on held-out images, with scikit-learn, and the blessing decision.

Positive class = not allowed (label 1).
"""

import dataclasses

import numpy as np
from sklearn import metrics

from admod.defaults import CLASS_NAMES


def classification_metrics(labels, probabilities, threshold: float) -> dict:
    """Scalar metrics and the confusion matrix at `threshold`."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    predicted = (probabilities >= threshold).astype(int)
    both_classes = len(np.unique(labels)) == 2
    return {
        "threshold": float(threshold),
        "count": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        "pr_auc": float(metrics.average_precision_score(labels, probabilities)) if both_classes else float("nan"),
        "brier": float(metrics.brier_score_loss(labels, probabilities)),
        # rows: actual allowed / not allowed; columns: predicted
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def roc_points(labels, probabilities, max_points: int = 200) -> dict:
    """The ROC curve, thinned to at most `max_points` points for the UI."""
    fpr, tpr, thresholds = metrics.roc_curve(labels, probabilities)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    thresholds = np.clip(thresholds[keep], 0.0, 1.0)  # sklearn's first threshold is inf
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thresholds.tolist()}


@dataclasses.dataclass
class Decision:
    blessed: bool
    reasons: list[str]


def decide(scores: dict, minimums: dict[str, float]) -> Decision:
    """Blessed when every configured minimum (> 0) is met; never when none is configured."""
    configured = {name: value for name, value in minimums.items() if value > 0}
    if not configured:
        return Decision(False, ["no threshold is configured: a model is never blessed by accident"])
    reasons, blessed = [], True
    for name, minimum in sorted(configured.items()):
        ok = scores[name] >= minimum
        blessed &= ok
        reasons.append(f"{name} {scores[name]:.4f} {'>=' if ok else '<'} minimum {minimum:.4f}")
    return Decision(blessed, reasons)


def format_confusion_matrix(matrix) -> str:
    width = max(len(n) for n in CLASS_NAMES) + 2
    lines = [" " * width + "".join(f"{'pred ' + n:>22}" for n in CLASS_NAMES)]
    for name, row in zip(CLASS_NAMES, matrix):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>22}" for v in row))
    return "\n".join(lines)
