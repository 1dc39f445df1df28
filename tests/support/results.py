"""Step results for a test: every required field filled with a plausible value, the ones a
test is about given."""

from admod.results import Evaluation, ModelInfo, PhaseSummary

PHASE = {"phase": "fine_tune", "epochs_run": 2, "last_epoch": 4, "best_epoch": 4,
         "best_val_loss": 0.5, "best_val_accuracy": 0.8, "best_val_auc": 0.85,
         "image_size": 224, "weights_source": "none", "preprocessing": "caffe"}


def phase_summary(**fields) -> PhaseSummary:
    return PhaseSummary.from_json({**PHASE, **fields})


def model_info(**fields) -> ModelInfo:
    return ModelInfo.from_json({**PHASE, **fields})


def evaluation(scores: dict, **fields) -> Evaluation:
    """An evaluation at threshold 0.5 (or `threshold`) on test, calibration none."""
    threshold = fields.get("threshold", 0.5)
    return Evaluation.from_json({"split": "test", "threshold": threshold,
                                 "threshold_rule": "fixed", "scores": scores, "reasons": [],
                                 "calibration": {"method": "none"}, **fields})
