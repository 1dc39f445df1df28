"""What crosses a step boundary, typed.

  PhaseSummary   a training step's result: its model folder's model_info.json
  ModelInfo      a registry version's model_info.json: the summary plus what push adds
  Evaluation     evaluate's result: its metrics file, and a version's metrics.json
  Calibration    the served probability's calibration, inside the two above

Each is a frozen dataclass written with `to_json()` and read with `from_json()`. A file written by
an older admod lacks the fields added since: their values for such a file are set here and
nowhere else. Keys this admod does not know (a newer one wrote them) are ignored.
"""

import dataclasses
import json
import typing

from admod import defaults, storage
from admod.options import ImageRules


def _known(cls, data: dict) -> dict:
    """The items of `data` that are fields of `cls`."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


class _Json:
    def to_json(self) -> dict:
        """The fields as JSON has them (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass(frozen=True)
class CalibrationFacts(_Json):
    """The calibration fitted on validation, and the raw score's figures it is judged against.
    A version pushed before calibration existed: none, its threshold on the raw score."""
    method: str = "none"
    slope: float = 1.0
    intercept: float = 0.0
    temperature: float = 1.0
    raw_threshold: float = defaults.DECISION_THRESHOLD
    refused: str = ""
    brier_raw: float | None = None
    ece_raw: float | None = None

    @classmethod
    def from_json(cls, data: dict | None, threshold: float) -> "CalibrationFacts":
        return cls(**{"raw_threshold": threshold, **_known(cls, data or {})})


@dataclasses.dataclass(frozen=True)
class PhaseSummary(_Json):
    """One training phase: its epochs, its best epoch's validation figures, how it ran, and what
    a reader of the model needs (input size, classes, preprocessing, initial weights)."""
    phase: str
    epochs_run: int
    last_epoch: int
    best_epoch: int
    best_val_loss: float
    best_val_accuracy: float
    best_val_auc: float
    image_size: int
    weights_source: str
    preprocessing: str
    class_names: tuple[str, ...] = defaults.CLASS_NAMES
    positive_class: str = defaults.POSITIVE_CLASS
    global_batch_size: int = 0
    last_short_batch_dropped: bool = False
    class_weights: dict = dataclasses.field(default_factory=dict)
    gpus: int = 0
    replicas: int = 1
    mixed_precision: bool = False
    xla: bool = False
    # Fine-tuning's only (None after the head phase); a version from before `unfreeze` existed
    # was fine-tuned with everything unfrozen.
    unfreeze: str | None = "all"
    head_epochs_run: int | None = None
    weights_kept: str | None = None  # "head" or "fine_tune"
    kept_val_loss: float | None = None

    @classmethod
    def from_json(cls, data: dict):
        known = _known(cls, data)
        return cls(**{**known, "class_names": tuple(known.get("class_names",
                                                             defaults.CLASS_NAMES))})


@dataclasses.dataclass(frozen=True)
class ModelInfo(PhaseSummary):
    """A registry version's model_info.json: the kept phase's summary, then the operating point
    and calibration it serves, its input limit and where it came from. A version pushed before
    these existed: the method's threshold on an uncalibrated score."""
    threshold: float = defaults.DECISION_THRESHOLD
    threshold_rule: str = "fixed"
    calibration: CalibrationFacts = CalibrationFacts()
    ece: float | None = None
    ece_raw: float | None = None
    max_image_pixels: int = ImageRules.max_image_pixels
    lineage: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "ModelInfo":
        summary = super().from_json(data)
        threshold = float(data.get("threshold", defaults.DECISION_THRESHOLD))
        return dataclasses.replace(summary, calibration=CalibrationFacts.from_json(
            data.get("calibration"), data.get("raw_threshold", threshold)))

    @classmethod
    def pushed(cls, summary: PhaseSummary, evaluation: "Evaluation", max_image_pixels: int,
               lineage: dict) -> "ModelInfo":
        return cls(**{f.name: getattr(summary, f.name)
                      for f in dataclasses.fields(PhaseSummary)},
                   threshold=evaluation.threshold, threshold_rule=evaluation.threshold_rule,
                   calibration=evaluation.calibration, ece=evaluation.scores["ece"],
                   ece_raw=evaluation.calibration.ece_raw, max_image_pixels=max_image_pixels,
                   lineage=lineage)

    def to_json(self) -> dict:
        # raw_threshold at the top too: the key model_info.json has always had
        return {**super().to_json(), "raw_threshold": self.calibration.raw_threshold}


@dataclasses.dataclass(frozen=True)
class Evaluation(_Json):
    """The evaluation of a model: figures at the operating threshold (`scores`, a metric's name
    to its value) with their intervals, at 0.5, the champion's on the same images, the
    calibration, the slices and the decision with its reasons."""
    split: str
    threshold: float
    threshold_rule: str
    scores: dict
    calibration: CalibrationFacts
    reasons: list = dataclasses.field(default_factory=list)
    blessed: bool = True  # only blessed versions were pushed before the field was stored
    scores_at_0_5: dict | None = None  # None: `scores` (an evaluation at 0.5 only)
    champion: str | None = None
    champion_scores: dict | None = None
    intervals: dict = dataclasses.field(default_factory=dict)
    interval_level: float = 0.95
    resamples: int = 0
    champion_differences: dict = dataclasses.field(default_factory=dict)
    slices: list = dataclasses.field(default_factory=list)
    optimistic: str = ""
    roc: dict | None = None
    model: PhaseSummary | None = None

    def __post_init__(self):
        if self.scores_at_0_5 is None:  # one threshold: the figures at 0.5 are the scores
            object.__setattr__(self, "scores_at_0_5", self.scores)

    @classmethod
    def from_json(cls, data: dict) -> "Evaluation":
        known = _known(cls, data)
        scores = known["scores"]
        # Before calibration, the raw score was the served one: its figures are the scores'.
        calibration = {"brier_raw": scores.get("brier"), "ece_raw": scores.get("ece"),
                       **(known.get("calibration") or {})}
        return cls(**{**known, "calibration": CalibrationFacts.from_json(
                          calibration, known["threshold"]),
                      "model": PhaseSummary.from_json(known["model"]) if known.get("model")
                      else None})

    def interval(self, name: str) -> tuple[float, float] | None:
        """The figure's interval, None for one without (Brier) or a version from before."""
        low_high = self.intervals.get(name)
        return tuple(low_high) if low_high else None


Result = typing.TypeVar("Result", PhaseSummary, ModelInfo, Evaluation)


def read(cls: type[Result], path: str) -> Result:
    """A result from its JSON file (a local path or an object-store URI)."""
    return cls.from_json(storage.read_json(path))
