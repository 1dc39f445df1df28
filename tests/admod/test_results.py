"""The typed step results read what every admod wrote: the files of older versions get the
values those versions served by (one place: admod/results.py), newer keys are ignored, and
what is written is read back unchanged."""

import json

from admod import defaults, results
from admod.calibration import Calibration
from admod.options import DEFAULTS
from admod.results import CalibrationFacts, Evaluation, ModelInfo, PhaseSummary
from tests.support import results as made

# model_info.json as push wrote it before calibration, intervals and input limits existed
BEFORE_CALIBRATION = {**made.PHASE, "threshold": 0.62, "threshold_rule": "max_f1 on validation"}
# metrics.json as push wrote it then: no intervals, no slices, no raw figures
OLD_METRICS = {"split": "validation", "threshold": 0.62, "threshold_rule": "max_f1",
               "scores": {"accuracy": 0.9, "brier": 0.08, "ece": 0.05, "roc_auc": 0.95},
               "champion": None, "champion_scores": None, "reasons": ["no champion yet"]}


def test_a_version_from_before_calibration_serves_its_threshold_uncalibrated():
    info = ModelInfo.from_json(BEFORE_CALIBRATION)
    assert info.threshold == 0.62
    assert info.calibration.raw_threshold == 0.62  # its one threshold, on the raw score
    assert Calibration.of(info.calibration) == Calibration()  # the raw probability
    assert info.max_image_pixels == DEFAULTS.max_image_pixels
    assert info.unfreeze == "all"  # fine-tuned with everything unfrozen then
    assert info.class_names == defaults.CLASS_NAMES


def test_a_version_from_before_thresholds_serves_the_methods_one():
    old = {key: value for key, value in BEFORE_CALIBRATION.items()
           if key not in ("threshold", "threshold_rule")}
    info = ModelInfo.from_json(old)
    assert info.threshold == info.calibration.raw_threshold == defaults.DECISION_THRESHOLD


def test_an_old_evaluation_reads_with_its_own_figures_in_the_new_places():
    evaluation = Evaluation.from_json(OLD_METRICS)
    assert evaluation.scores_at_0_5 == OLD_METRICS["scores"]
    assert (evaluation.calibration.method, evaluation.calibration.raw_threshold) == ("none", 0.62)
    assert evaluation.calibration.ece_raw == 0.05 and evaluation.calibration.brier_raw == 0.08
    assert evaluation.intervals == {} and evaluation.slices == [] and evaluation.blessed
    assert evaluation.interval("accuracy") is None


def test_keys_a_newer_admod_adds_are_ignored():
    info = ModelInfo.from_json({**BEFORE_CALIBRATION, "drift_score": 0.3})
    evaluation = Evaluation.from_json({**OLD_METRICS, "fairness": {"a": 1}})
    assert not hasattr(info, "drift_score") and not hasattr(evaluation, "fairness")


def test_what_is_written_is_read_back_unchanged(tmp_path):
    summary = made.phase_summary(weights_kept="head", kept_val_loss=0.41, unfreeze="conv5_block1",
                                 class_weights={"allowed_ads": 0.7, "not_allowed_ads": 1.8})
    calibration = CalibrationFacts("platt", 0.8, -0.3, 1.25, 0.71, "", 0.09, 0.12)
    evaluation = Evaluation("test", 0.6, "max_f1", {"accuracy": 0.9, "ece": 0.02}, calibration,
                            ["blessed"], intervals={"accuracy": [0.85, 0.94]}, model=summary)
    info = ModelInfo.pushed(summary, evaluation, 40_000_000, {"pipeline_run_id": "r1"})
    for value, cls in ((summary, PhaseSummary), (evaluation, Evaluation), (info, ModelInfo)):
        path = tmp_path / f"{cls.__name__}.json"
        path.write_text(json.dumps(value.to_json()))
        assert results.read(cls, str(path)) == value
    assert info.to_json()["raw_threshold"] == 0.71  # the key model_info.json always had
    assert (info.threshold, info.ece, info.ece_raw) == (0.6, 0.02, 0.12)
