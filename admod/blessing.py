"""The blessing decision behind the conditional push, as TFX's Evaluator makes it.

Value thresholds: a minimum per gating metric (0 disables one). Change threshold: the current
champion, scored on the same images, may not beat the challenger on `gating_metric` by more
than `max_regression`. No champion yet: value thresholds alone. No threshold configured at all:
not blessed, so nothing is ever blessed by accident.
"""

import dataclasses

from admod import defaults
from admod.errors import AdmodError

GATING_METRICS = defaults.GATING_METRICS
# The pipeline's value-threshold parameters and the metric each one gates.
MINIMUM_PARAMETERS = {"min_accuracy": "accuracy", "min_auc": "roc_auc",
                      "min_precision": "precision", "min_recall": "recall"}


def _method_minimums() -> dict[str, float]:
    return {"accuracy": defaults.MIN_ACCURACY, "roc_auc": defaults.MIN_AUC,
            "precision": defaults.MIN_PRECISION, "recall": defaults.MIN_RECALL}


@dataclasses.dataclass
class Criteria:
    minimums: dict[str, float] = dataclasses.field(default_factory=_method_minimums)  # 0: off
    gating_metric: str = defaults.GATING_METRIC
    max_regression: float = defaults.MAX_REGRESSION  # absolute; < 0: the challenger must win

    @classmethod
    def from_parameters(cls, values: dict) -> "Criteria":
        """From the pipeline's flat parameters: min_accuracy, min_auc, ..., gating_metric and
        max_regression."""
        return cls(minimums={metric: values[name] for name, metric in MINIMUM_PARAMETERS.items()},
                   gating_metric=values["gating_metric"], max_regression=values["max_regression"])

    def validate(self) -> None:
        for name, value in self.minimums.items():
            if name not in GATING_METRICS:
                raise AdmodError(f"Threshold on '{name}' is not a metric admod gates on: use one "
                                 f"of {', '.join(GATING_METRICS)}.")
            if not 0 <= value <= 1:
                parameter = {m: p for p, m in MINIMUM_PARAMETERS.items()}.get(name, f"min_{name}")
                raise AdmodError(f"{parameter}={value} is out of range: use a value between 0 "
                                 "(off) and 1.")
        if self.gating_metric not in GATING_METRICS:
            raise AdmodError(f"gating_metric='{self.gating_metric}' is unknown: use one of "
                             f"{', '.join(GATING_METRICS)}.")
        if not -1 < self.max_regression < 1:
            raise AdmodError(f"max_regression={self.max_regression} is out of range: use an "
                             "absolute difference such as 0.005.")


@dataclasses.dataclass
class Decision:
    blessed: bool
    reasons: list[str]


def decide(scores: dict, criteria: Criteria, champion_scores: dict | None = None,
           champion: str | None = None) -> Decision:
    """Every comparison made, with both values, in `reasons`."""
    criteria.validate()
    configured = {name: value for name, value in criteria.minimums.items() if value > 0}
    if not configured and champion_scores is None:
        return Decision(False, ["no threshold is configured and there is no champion: "
                                "a model is never blessed by accident"])
    reasons, blessed = [], True
    for name, minimum in sorted(configured.items()):
        ok = scores[name] >= minimum
        blessed &= ok
        reasons.append(f"{name} {scores[name]:.4f} {'>=' if ok else '<'} minimum {minimum:.4f}")
    if champion_scores is None:
        reasons.append("no champion yet: value thresholds alone")
    else:
        metric = criteria.gating_metric
        floor = champion_scores[metric] - criteria.max_regression
        ok = scores[metric] >= floor
        blessed &= ok
        reasons.append(f"{metric} {scores[metric]:.4f} {'>=' if ok else '<'} champion {champion} "
                       f"{champion_scores[metric]:.4f} - max_regression "
                       f"{criteria.max_regression:g}")
    return Decision(blessed, reasons)
