import pytest

from admod.blessing import decide
from admod.errors import AdmodError
from admod.options import BlessingOptions

MINIMUM = {"accuracy": "min_accuracy", "roc_auc": "min_auc", "precision": "min_precision",
           "recall": "min_recall"}


def Criteria(minimums: dict, gating_metric: str = "roc_auc", max_regression: float = 0.005):
    """BlessingOptions with only `minimums` (metric -> least value) on, the others off."""
    return BlessingOptions(**{name: minimums.get(metric, 0.0) for metric, name in MINIMUM.items()},
                           gating_metric=gating_metric, max_regression=max_regression)

SCORES = {"accuracy": 0.90, "roc_auc": 0.95, "precision": 0.8, "recall": 0.7, "f1": 0.75,
          "pr_auc": 0.9}


def test_value_thresholds_pass():
    decision = decide(SCORES, Criteria({"accuracy": 0.85, "roc_auc": 0.9}))
    assert decision.blessed
    assert "accuracy 0.9000 >= minimum 0.8500" in decision.reasons
    assert "no champion yet: value thresholds alone" in decision.reasons


def test_one_value_threshold_fails():
    decision = decide(SCORES, Criteria({"accuracy": 0.95, "roc_auc": 0.9}))
    assert not decision.blessed and "accuracy 0.9000 < minimum 0.9500" in decision.reasons


def test_challenger_not_worse_than_champion_is_blessed():
    champion = {**SCORES, "roc_auc": 0.953}
    decision = decide(SCORES, Criteria({"accuracy": 0.5}, "roc_auc", 0.005), champion, "v1")
    assert decision.blessed
    assert any("champion v1 0.9530" in r and ">=" in r for r in decision.reasons)


def test_challenger_worse_than_champion_is_not_blessed():
    champion = {**SCORES, "roc_auc": 0.97}
    decision = decide(SCORES, Criteria({"accuracy": 0.5}, "roc_auc", 0.005), champion, "v1")
    assert not decision.blessed
    assert any("roc_auc 0.9500 < champion v1 0.9700" in r for r in decision.reasons)


def test_no_threshold_at_all_is_never_blessed():
    decision = decide(SCORES, Criteria({"accuracy": 0.0, "roc_auc": 0.0}))
    assert not decision.blessed and "never blessed by accident" in decision.reasons[0]


@pytest.mark.parametrize("given, words", [
    ({"min_accuracy": 1.5}, "min_accuracy=1.5 is out of range"),
    ({"gating_metric": "speed"}, "gating_metric='speed' is unknown"),
    ({"max_regression": 1.0}, "max_regression=1.0 is out of range"),
])
def test_bad_criteria_are_refused_when_given(given, words):
    with pytest.raises(AdmodError, match=words):
        BlessingOptions(**given)


def test_each_minimum_gates_the_metric_its_parameter_names():
    assert Criteria({"accuracy": 0.1, "roc_auc": 0.2, "precision": 0.3, "recall": 0.4}).minimums \
        == {"accuracy": 0.1, "roc_auc": 0.2, "precision": 0.3, "recall": 0.4}


@pytest.mark.parametrize("name", ["accuracy", "roc_auc", "precision", "recall"])
def test_a_score_exactly_at_its_minimum_is_blessed(name):
    """0.875 is exact in binary: the comparison is >=, never >."""
    scores = {**SCORES, name: 0.875}
    assert decide(scores, Criteria({name: 0.875})).blessed
    assert not decide(scores, Criteria({name: 0.875 + 2**-20})).blessed


def test_a_challenger_exactly_at_the_champion_minus_max_regression_is_blessed():
    """champion 0.875, max_regression 0.125: the floor is exactly 0.75 (all exact in binary)."""
    champion = {**SCORES, "roc_auc": 0.875}
    at_floor = {**SCORES, "roc_auc": 0.75}
    assert decide(at_floor, Criteria({"accuracy": 0.5}, "roc_auc", 0.125), champion, "v1").blessed
    below = {**SCORES, "roc_auc": 0.75 - 2**-20}
    assert not decide(below, Criteria({"accuracy": 0.5}, "roc_auc", 0.125), champion,
                      "v1").blessed


def test_max_ece_gates_like_a_minimum_and_is_off_by_default():
    assert BlessingOptions().max_ece == 0.0
    calibrated, miscalibrated = {**SCORES, "ece": 0.03}, {**SCORES, "ece": 0.2}
    criteria = BlessingOptions(min_accuracy=0, min_auc=0, max_ece=0.05)
    assert decide(calibrated, criteria).blessed
    refused = decide(miscalibrated, criteria)
    assert not refused.blessed and "ece 0.2000 > maximum 0.0500" in refused.reasons
    assert decide(miscalibrated, Criteria({"accuracy": 0.5})).blessed  # off: ECE not read


def test_a_refusal_refuses_whatever_the_figures():
    decision = decide(SCORES, Criteria({"accuracy": 0.5}), refusals=["calibration failed"])
    assert not decision.blessed and decision.reasons[0] == "refused: calibration failed"
    assert "accuracy 0.9000 >= minimum 0.5000" in decision.reasons
