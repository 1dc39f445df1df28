import numpy as np
import pytest
from sklearn import metrics

from admod import evaluation
from admod.errors import AdmodError
from admod.options import EvaluationOptions

RNG = np.random.default_rng(0)
LABELS = (RNG.random(400) < 0.3).astype(int)
PROBS = np.clip(LABELS * 0.35 + RNG.random(400) * 0.65, 0, 1)


def test_metrics_match_sklearn_with_not_allowed_positive():
    m = evaluation.classification_metrics(LABELS, PROBS, 0.5)
    predicted = PROBS >= 0.5
    assert m["precision"] == pytest.approx(metrics.precision_score(LABELS, predicted))
    assert m["roc_auc"] == pytest.approx(metrics.roc_auc_score(LABELS, PROBS))
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    assert tp == int((predicted & (LABELS == 1)).sum()) and tn + fp == int((LABELS == 0).sum())
    assert set(m["per_class"]) >= {"allowed_ads", "not_allowed_ads"}


def test_min_precision_rule_meets_the_target_with_the_best_recall():
    threshold, how = evaluation.choose_threshold(LABELS, PROBS, "min_precision", 0.9)
    m = evaluation.classification_metrics(LABELS, PROBS, threshold)
    assert m["precision"] >= 0.9 and "precision >= 0.9" in how
    lower = PROBS[PROBS < threshold].max()
    assert evaluation.classification_metrics(LABELS, PROBS, lower)["precision"] < 0.9


def test_min_recall_and_max_f1_and_fixed():
    threshold, _ = evaluation.choose_threshold(LABELS, PROBS, "min_recall", 0.95)
    assert evaluation.classification_metrics(LABELS, PROBS, threshold)["recall"] >= 0.95
    best, _ = evaluation.choose_threshold(LABELS, PROBS, "max_f1", 0.5)
    f1_best = evaluation.classification_metrics(LABELS, PROBS, best)["f1"]
    assert all(evaluation.classification_metrics(LABELS, PROBS, t)["f1"] <= f1_best + 1e-12
               for t in np.linspace(0.05, 0.95, 19))
    assert evaluation.choose_threshold(LABELS, PROBS, "fixed", 0.5) == (0.5, "fixed at 0.5")


def test_unreachable_target_falls_back_to_best_f1_and_says_so():
    threshold, how = evaluation.choose_threshold([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2],
                                                 "min_precision", 0.99)
    assert "no threshold reaches precision 0.99" in how


@pytest.mark.parametrize("rule, target", [("median", 0.5), ("fixed", 1.5)])
def test_bad_threshold_parameters(rule, target):
    with pytest.raises(AdmodError, match="threshold_"):
        EvaluationOptions(threshold_rule=rule, threshold_target=target)


def test_expected_calibration_error():
    assert evaluation.expected_calibration_error([0, 1] * 50, [0.0, 1.0] * 50) == 0.0
    assert evaluation.expected_calibration_error([0] * 100, [0.8] * 100) == pytest.approx(0.8)


def test_the_threshold_table_row_at_the_operating_threshold_is_the_headline():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300)
    probabilities = np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1)
    threshold, _ = evaluation.choose_threshold(labels, probabilities, "min_precision", 0.9)
    assert round(threshold, 4) != threshold  # rounded, the row would be another threshold's
    headline = evaluation.classification_metrics(labels, probabilities, threshold)
    table = evaluation.threshold_table(labels, probabilities, threshold)
    (row,) = table[table["threshold"] == threshold].to_dict("records")
    assert (row["precision"], row["recall"]) == (headline["precision"], headline["recall"])
