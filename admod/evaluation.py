"""Metrics on held-out images, with scikit-learn, and the operating point: the calibration
and threshold chosen on validation.

Positive class = not allowed (label 1).
"""

import dataclasses

import numpy as np
import pandas as pd
from sklearn import metrics

from admod import calibration as calibration_lib
from admod.calibration import Calibration
from admod.defaults import CLASS_NAMES


def classification_metrics(labels, probabilities, threshold: float, predicted=None) -> dict:
    """Scalar metrics and the confusion matrix at `threshold`, or of the decisions
    `predicted` (0/1) when given (those of a raw score at its raw threshold)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    predicted = (probabilities >= threshold if predicted is None else np.asarray(predicted)
                 ).astype(int)
    both_classes = len(np.unique(labels)) == 2
    return {
        "threshold": float(threshold),
        "count": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": (float(metrics.roc_auc_score(labels, probabilities)) if both_classes
                    else float("nan")),
        "pr_auc": (float(metrics.average_precision_score(labels, probabilities)) if both_classes
                   else float("nan")),
        **calibration_scores(labels, probabilities),
        # rows: actual allowed / not allowed; columns: predicted
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "per_class": metrics.classification_report(labels, predicted, labels=[0, 1],
                                                   target_names=list(CLASS_NAMES),
                                                   output_dict=True, zero_division=0),
    }


def calibration_scores(labels, probabilities) -> dict:
    """How far the probabilities are from the observed shares: Brier score and ECE."""
    return {"brier": float(metrics.brier_score_loss(labels, probabilities)),
            "ece": expected_calibration_error(labels, probabilities)}


@dataclasses.dataclass
class OperatingPoint:
    """What validation sets for serving: the calibration of the score and the threshold, on the
    raw and on the calibrated score."""
    calibration: Calibration
    raw_threshold: float
    threshold: float
    rule: str  # how the threshold was chosen
    held_out: np.ndarray  # validation's probabilities, each calibrated by a fit on other folds
    refused: str = ""  # why the calibration asked for was not made

    def facts(self) -> dict:
        return {**self.calibration.facts(), "raw_threshold": self.raw_threshold,
                "refused": self.refused}


def operating_point(labels, raw_probabilities, method: str, rule: str,
                    target: float) -> OperatingPoint:
    """The calibration by `method` (fitted on all of validation) and the threshold by `rule`.
    The rules other than fixed rank images only, so they are applied to the raw score and the
    threshold is mapped; a fixed threshold is one on the served, calibrated probability."""
    raw = np.asarray(raw_probabilities, dtype=np.float64)
    try:
        calibration = calibration_lib.fit(labels, raw, method)
        held_out, refused = calibration_lib.cross_fitted(labels, raw, method), ""
    except calibration_lib.CannotCalibrate as error:
        calibration, held_out, refused = Calibration(), raw, str(error)
    if rule == "fixed":
        return OperatingPoint(calibration, calibration.inverse(target), float(target),
                              f"fixed at {target:g}", held_out, refused)
    raw_threshold, how = choose_threshold(labels, raw, rule, target)
    return OperatingPoint(calibration, raw_threshold,
                          float(calibration.apply([raw_threshold])[0]), how, held_out, refused)


def roc_points(labels, probabilities, max_points: int = 200) -> dict:
    """The ROC curve, thinned to at most `max_points` points for the UI."""
    fpr, tpr, thresholds = metrics.roc_curve(labels, probabilities)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    thresholds = np.clip(thresholds[keep], 0.0, 1.0)  # sklearn's first threshold is inf
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thresholds.tolist()}


def format_confusion_matrix(matrix) -> str:
    width = max(len(n) for n in CLASS_NAMES) + 2
    lines = [" " * width + "".join(f"{'pred ' + n:>22}" for n in CLASS_NAMES)]
    for name, row in zip(CLASS_NAMES, matrix, strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>22}" for v in row))
    return "\n".join(lines)


def choose_threshold(labels, probabilities, rule: str, target: float) -> tuple[float, str]:
    """The operating threshold by `rule`, and how it was chosen.

    fixed: `target` itself; min_precision: precision >= target with the highest recall;
    min_recall: recall >= target with the highest precision; max_f1: the best F1. The rule
    and target are checked where they are given (admod.options).
    """
    if rule == "fixed":
        return float(target), f"fixed at {target:g}"
    precision, recall, thresholds = metrics.precision_recall_curve(labels, probabilities)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    if rule == "max_f1":
        best = int(np.argmax(f1))
        return float(thresholds[best]), f"best F1 {f1[best]:.4f} on validation"
    meets, other, goal = {"min_precision": (precision, recall, "precision"),
                          "min_recall": (recall, precision, "recall")}[rule]
    ok = np.flatnonzero(meets >= target)
    if len(ok) == 0:
        best = int(np.argmax(f1))
        return float(thresholds[best]), (f"no threshold reaches {goal} {target:g} on validation: "
                                         f"best F1 threshold instead")
    best = ok[np.argmax(other[ok])]
    best_of = "recall" if goal == "precision" else "precision"
    return float(thresholds[best]), f"{goal} >= {target:g} on validation, best {best_of}"


def expected_calibration_error(labels, probabilities, bins: int = 10) -> float:
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(labels[members].mean() - probabilities[members].mean())
    return float(error)


def threshold_table(labels, probabilities, extra: float) -> pd.DataFrame:
    """Figures at 0.1, 0.2 ... 0.9 and at `extra` (the operating threshold) itself: rounded, it
    could leave out the image it was chosen at."""
    rows = []
    for t in sorted({*np.round(np.arange(0.1, 1.0, 0.1), 2), float(extra)}):
        m = classification_metrics(labels, probabilities, t)
        (tn, fp), (fn, tp) = m["confusion_matrix"]
        rows.append({"threshold": t, "precision": m["precision"], "recall": m["recall"],
                     "f1": m["f1"], "false_positives": fp, "false_negatives": fn})
    return pd.DataFrame(rows)
