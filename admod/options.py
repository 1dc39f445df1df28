"""Every pipeline parameter's one home: its step's options dataclass.

A parameter is a dataclass field made by `parameter(default, rule, description)`: its default
(the method's value, shared/DESIGN.md), the rule its value must meet, and the one line the run
form shows. Everything else is derived from these fields: the pipeline's defaults and parameter
descriptions (`DEFAULTS`, `describe`), the checks before a run (`problems`, used by
check-parameters and `admod run/submit/schedule`), the flags of `admod split`, and each
component's options (`from_parameters`, which refuses a missing or unknown name).

Fields made with plain `dataclasses.field` or a bare default are not pipeline parameters: the
steps set them (an epoch count per phase, a state key) or keep the method's value.

Pure Python on purpose: the pipeline definition imports it, and compiling must not need
TensorFlow.
"""

import dataclasses
import math
import types

from admod import defaults, resources, storage, vertex_targets
from admod.errors import AdmodError
from admod.metric_names import GATING_METRICS

RESNET50_BLOCKS = tuple(f"conv{stage}_block{block}" for stage, blocks in
                        ((2, 3), (3, 4), (4, 6), (5, 3)) for block in range(1, blocks + 1))
CLASS_WEIGHTINGS = ("auto", "balanced", "none")
THRESHOLD_RULES = ("fixed", "min_precision", "min_recall", "max_f1")
CALIBRATIONS = ("platt", "temperature", "none")  # admod.calibration's methods
CHAMPION_RULES = ("not_worse_beyond_noise", "point")  # admod.blessing's
REQUIRED = dataclasses.MISSING  # a parameter without a default: the user must pass it
SHARD_SIZE = 1000  # images per TFRecord file


# --- rules: each returns one sentence naming the parameter, or None ------------------------

def within(low, high, low_open=False, high_open=False):
    def refusal(name, value):
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            return f"{name}={value} is out of range: use a value in {left}{low:g}, {high:g}{right}."
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    refusal.text = f"{left}{low:g}, {high:g}{right}"
    return refusal


def at_least(low):
    def refusal(name, value):
        if value < low:
            return f"{name}={value} is too small: use {low} or more."
    refusal.text = f"{low} or more"
    return refusal


def one_of(choices):
    def refusal(name, value):
        if value not in choices:
            return f"{name}='{value}' is unknown: use one of {', '.join(choices)}."
    refusal.text = ", ".join(choices)
    return refusal


def not_empty(name, value):
    if not str(value).strip():
        return f"{name} is empty: pass a folder or a gs:// URI."


not_empty.text = "not empty"


def anything(name, value):
    return None


anything.text = ""


FRACTION = within(0, 1, low_open=True, high_open=True)
SHARE = within(0, 1)
LEARNING_RATE = within(0, 1, low_open=True)
BELOW_ONE = within(0, 1, high_open=True)


def parameter(default, rule, description: str, **facts):
    """A pipeline parameter: a dataclass field with its default, rule and description (and any
    `facts` about it, such as the metric a minimum gates)."""
    return dataclasses.field(default=default,
                             metadata={"rule": rule, "description": description, **facts})


def is_parameter(field: dataclasses.Field) -> bool:
    return "rule" in field.metadata


class Checked:
    """Options whose parameters are checked on construction: a value out of range or a
    combination that cannot work is an AdmodError naming every problem."""

    def __post_init__(self):
        require_valid(flat_values(self))


# --- the steps' options ----------------------------------------------------------------------

@dataclasses.dataclass
class Locations(Checked):
    """Where the data is read from and the models are published to."""
    data_root: str = parameter(
        REQUIRED, not_empty,
        "Folder or gs:// prefix with allowed_ads/ and not_allowed_ads/ (only read).")
    registry_root: str = parameter(
        REQUIRED, not_empty, "Folder or gs:// prefix of the model registry push publishes to.")


@dataclasses.dataclass
class Seeded(Checked):
    seed: int = parameter(
        42, at_least(0),
        "Seed of the split, the initial weights, the shuffles and the augmentation draws.")


@dataclasses.dataclass
class ListingOptions(Checked):
    """The split's first stage: the data root listed into partitions."""
    split_workers: int = parameter(
        1, within(1, 1000), "Parallel tasks checking the images (one listing partition each).")


@dataclasses.dataclass
class ImageRules(Checked):
    """Which images are usable: the split's checks, and serving's."""
    min_image_side: int = parameter(
        32, at_least(1), "Images with a shorter side (pixels) are excluded as too_small.")
    max_image_pixels: int = parameter(
        50_000_000, at_least(1),
        "Images with more pixels are excluded (and refused in serving).")
    shard_size: int = SHARD_SIZE
    # I/O threads per partition: twice the CPUs of the container (its quota, not the node's)
    workers: int = dataclasses.field(default_factory=lambda: 2 * resources.cpu_limit())


@dataclasses.dataclass
class SplitOptions(Seeded):
    """The merge: every usable image assigned to a split by its content hash."""
    val_fraction: float = parameter(
        0.2, FRACTION, "Share of the images for validation, by content hash (stable as it grows).")
    test_fraction: float = parameter(
        0.0, BELOW_ONE,
        "Share held out for test (0: the headline figures come from validation).")
    shard_size: int = SHARD_SIZE


@dataclasses.dataclass
class OnDevice(Checked):
    batch_size: int = parameter(
        32, at_least(1), "Images per batch on each GPU (global batch: batch_size x GPUs).")
    require_gpu: bool = parameter(
        True, anything, "Fail the GPU steps at once when TensorFlow sees no GPU, not train on CPU.")


@dataclasses.dataclass(frozen=True)
class AugmentOptions(Checked):
    """Training augmentation; shear in degrees (README "Augmentation")."""
    rotation_degrees: float = parameter(
        30.0, within(0, 180), "Largest random rotation, in degrees (training only).")
    width_shift: float = parameter(
        0.2, BELOW_ONE, "Largest random horizontal shift, as a share of the width.")
    height_shift: float = parameter(
        0.2, BELOW_ONE, "Largest random vertical shift, as a share of the height.")
    shear_degrees: float = parameter(
        0.2, within(0, 90, high_open=True),
        "Largest random shear, in degrees (0.2 = Keras 2's shear_range=0.2).")
    zoom: float = parameter(
        0.2, BELOW_ONE, "Largest random zoom in or out, as a share (0.2: 80%-120%).")
    horizontal_flip: bool = parameter(True, anything,
                                      "Flip half of the training images horizontally.")


@dataclasses.dataclass
class TrainingOptions(OnDevice, Seeded):
    """What both training phases share. `epochs` and `learning_rate` are the phase's, set by
    its step from HeadOptions or FineTuneOptions; `state_key` is the step's own output URI."""
    augmentation: AugmentOptions = dataclasses.field(default_factory=AugmentOptions)
    class_weighting: str = parameter(
        "auto", one_of(CLASS_WEIGHTINGS),
        "auto (inverse frequency when the minority is rare), balanced or none.")
    class_weight_minority_share: float = parameter(
        0.4, within(0, 0.5, low_open=True),
        "auto weights classes when the minority's share is lower.")
    early_stopping_patience: int = parameter(
        5, at_least(1), "Epochs without a better val_loss before a phase stops.")
    reduce_lr_patience: int = parameter(
        3, at_least(1), "Epochs without a better val_loss before the learning rate drops.")
    reduce_lr_factor: float = parameter(
        0.2, FRACTION, "Factor the learning rate is multiplied by on a plateau.")
    mixed_precision: bool = parameter(True, anything,
                                      "Train in mixed_float16 when a GPU is present.")
    xla: bool = parameter(True, anything,
                          "Compile the training step with XLA when a GPU is present.")
    checkpoint_root: str = parameter(
        "", anything, "Folder or gs:// prefix for each epoch's training state (preemption).")
    epochs: int = 15
    learning_rate: float = 1e-3
    min_learning_rate: float = defaults.MIN_LEARNING_RATE
    # Unique to the run and the same on every retry of its step: the step's own output URI,
    # which every backend makes so (the run's uuid is not substituted before KFP 2.5, and as an
    # input it would enter the step's cache key).
    state_key: str = "local"


class Phase(Checked):
    """A training phase's own parameters: its `schedule` (epochs, learning rate) and more."""

    def schedule(self) -> tuple[int, float]:
        raise NotImplementedError

    def training_options(self, shared: TrainingOptions, state_key: str) -> TrainingOptions:
        """The phase's training options: what the phases share, with its own schedule, keyed
        on `state_key` (the step's output URI)."""
        epochs, learning_rate = self.schedule()
        return dataclasses.replace(shared, epochs=epochs, learning_rate=learning_rate,
                                   state_key=state_key)


@dataclasses.dataclass
class HeadOptions(Phase):
    """Phase 1: ResNet50 frozen, the head trained."""
    image_size: int = parameter(
        224, within(32, 2048), "Side in pixels the images are resized to (224 in the method).")
    weights: str = parameter(
        "imagenet", not_empty,
        "Base weights: imagenet, none, or a path or gs:// URI of a no-top weights file.")
    allow_random_init: bool = parameter(
        False, anything, "Train from random weights when ImageNet's cannot be loaded, not fail.")
    head_epochs: int = parameter(
        15, at_least(1), "Most epochs of phase 1 (base frozen); early stopping may end it sooner.")
    head_learning_rate: float = parameter(1e-3, LEARNING_RATE, "Adam learning rate of phase 1.")

    def schedule(self) -> tuple[int, float]:
        return self.head_epochs, self.head_learning_rate


@dataclasses.dataclass
class FineTuneOptions(Phase):
    """Phase 2: the base unfrozen, a low learning rate."""
    fine_tune_epochs: int = parameter(
        30, at_least(1), "Most epochs of phase 2 (base unfrozen), numbered on from phase 1.")
    fine_tune_learning_rate: float = parameter(1e-5, LEARNING_RATE,
                                               "Adam learning rate of phase 2.")
    unfreeze: str = parameter(
        "all", one_of(("all",) + RESNET50_BLOCKS),
        "Base blocks trained in phase 2: all, or the first one, such as conv5_block1.")

    def schedule(self) -> tuple[int, float]:
        return self.fine_tune_epochs, self.fine_tune_learning_rate


@dataclasses.dataclass
class BlessingOptions(Checked):
    """Value thresholds (0 turns one off) and the change threshold against the champion."""
    min_accuracy: float = parameter(
        0.85, SHARE, "Blessing: the least accuracy at the operating threshold (0 turns it off).",
        gates="accuracy")
    min_auc: float = parameter(0.9, SHARE, "Blessing: the least ROC-AUC (0 turns it off).",
                               gates="roc_auc")
    min_precision: float = parameter(
        0.0, SHARE, "Blessing: the least precision for not allowed (0 turns it off).",
        gates="precision")
    min_recall: float = parameter(
        0.0, SHARE, "Blessing: the least recall for not allowed (0 turns it off).",
        gates="recall")
    gating_metric: str = parameter(
        "roc_auc", one_of(GATING_METRICS),
        "Blessing: the metric compared with the champion's on the same images.")
    max_regression: float = parameter(
        0.005, within(-1, 1, low_open=True, high_open=True),
        "Blessing: how far the champion may beat the new model on it.")
    champion_rule: str = parameter(
        "not_worse_beyond_noise", one_of(CHAMPION_RULES),
        "Blessing against the champion: not_worse_beyond_noise (refused when the paired 95% "
        "interval of champion - model lies above max_regression) or point (its point value).")
    slice_gate: bool = parameter(
        False, anything, "Blessing: also refuse when one slice (format, shape, size) is worse "
        "than the champion's beyond noise.")
    min_slice_size: int = parameter(
        50, at_least(1), "Slices with fewer evaluation images are shown, never gated.")
    max_ece: float = parameter(
        0.0, SHARE, "Blessing: the most expected calibration error of the served probability, "
        "on images calibration was not fitted on (0 turns it off).", caps="ece")

    @property
    def minimums(self) -> dict[str, float]:
        """metric -> the least value blessing accepts (0: off)."""
        return self._limits("gates")

    @property
    def maximums(self) -> dict[str, float]:
        """metric -> the most blessing accepts (0: off)."""
        return self._limits("caps")

    def _limits(self, kind: str) -> dict[str, float]:
        return {field.metadata[kind]: getattr(self, field.name)
                for field in dataclasses.fields(self) if kind in field.metadata}


@dataclasses.dataclass
class EvaluationOptions(OnDevice):
    blessing: BlessingOptions = dataclasses.field(default_factory=BlessingOptions)
    threshold_rule: str = parameter(
        "min_precision", one_of(THRESHOLD_RULES),
        "Operating threshold rule: min_precision, min_recall, max_f1 or fixed.")
    threshold_target: float = parameter(
        0.9, FRACTION, "The precision or recall the rule must reach, or the fixed threshold "
        "(on the served, calibrated probability).")
    calibration: str = parameter(
        "platt", one_of(CALIBRATIONS),
        "Calibration of the served probability, fitted on validation: platt, temperature or "
        "none.")
    gallery_size: int = 12


@dataclasses.dataclass
class VertexPlace(Checked):
    vertex_project: str = parameter(
        "", anything, "Google Cloud project of vertex_model and experiment (submit sets it).")
    vertex_location: str = parameter(
        "", anything, "Region of vertex_model and experiment (submit sets it).")


@dataclasses.dataclass
class VertexModelOptions(VertexPlace):
    """Off while vertex_model is empty. Served by TF Serving on TensorFlow 2.15, the version the
    export is checked on."""
    vertex_model: str = parameter(
        "", anything, "Vertex AI Model Registry model push adds each version to (name or ID).")
    vertex_serving_image: str = parameter(
        defaults.VERTEX_SERVING_IMAGE, anything, "Serving container of the Vertex model versions.")
    vertex_default_alias: bool = parameter(
        False, anything, "The champion's Vertex version also gets the default alias.")


@dataclasses.dataclass
class ExperimentOptions(VertexPlace):
    """Off while experiment is empty."""
    experiment: str = parameter(
        "", anything, "Vertex AI Experiment the run's parameters and metrics are logged to.")
    vertex_tensorboard: str = parameter(
        "", anything, "Vertex TensorBoard (resource name) for the experiment's curves.")


# In the run form's order.
STEP_OPTIONS = (Locations, SplitOptions, ImageRules, ListingOptions, HeadOptions,
                FineTuneOptions, TrainingOptions, EvaluationOptions, VertexModelOptions,
                ExperimentOptions)


# --- what is derived from the fields ---------------------------------------------------------

def parameter_fields(cls) -> dict[str, dataclasses.Field]:
    """name -> field of every pipeline parameter of `cls`, its nested options' included."""
    found = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            found.update(parameter_fields(field.type))
        elif is_parameter(field):
            found[field.name] = field
    return found


def _all_parameters() -> dict[str, dataclasses.Field]:
    found = {}
    for cls in STEP_OPTIONS:
        found.update(parameter_fields(cls))
    return found


PARAMETERS = _all_parameters()
DEFAULTS = types.SimpleNamespace(**{name: field.default for name, field in PARAMETERS.items()
                                    if field.default is not REQUIRED})


def describe(summary: str) -> str:
    """A docstring for the pipeline function: `summary`, then every parameter's description
    (KFP reads the run form's descriptions from it)."""
    lines = [f"    {name}: {field.metadata['description']}" for name, field in PARAMETERS.items()]
    return f"{summary}\n\nArgs:\n" + "\n".join(lines) + "\n"


def flat_values(options) -> dict:
    """name -> value of every parameter of an options instance, nested options included."""
    values = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if dataclasses.is_dataclass(field.type):
            values.update(flat_values(value))
        elif is_parameter(field):
            values[field.name] = value
    return values


def _relations(values: dict) -> list[str]:
    """Combinations no single rule sees: only of the names present."""
    found = []
    if "val_fraction" in values and "test_fraction" in values:
        total = values["val_fraction"] + values["test_fraction"]
        if total >= 1:
            found.append(f"val_fraction + test_fraction = {total:g} leaves no training images: "
                         "keep their sum under 1.")
    if "max_image_pixels" in values and "min_image_side" in values:
        if values["max_image_pixels"] < values["min_image_side"] ** 2:
            found.append("max_image_pixels is smaller than min_image_side squared: no image "
                         "could pass both.")
    if values.get("data_root") and values.get("registry_root") and storage.is_inside(
            values["registry_root"], values["data_root"]):
        found.append(f"registry_root '{values['registry_root']}' is inside data_root "
                     f"'{values['data_root']}', which admod only reads: keep the models "
                     "elsewhere.")
    for target_rule in (vertex_targets.check_model_target, vertex_targets.check_experiment_target):
        try:
            target_rule(values)
        except AdmodError as problem:
            found.append(str(problem))
    return found


def not_finite(name, value):
    """Every parameter's first rule: NaN and ±inf compare false with every bound, so a range
    rule alone would let them through (min_auc=nan would switch its gate off)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name}={value} is not a finite number: pass a number."


def problems(values: dict) -> list[str]:
    """One sentence per value of `values` (parameter name -> typed value) out of its range or
    choices, and per impossible combination (of the finite values only)."""
    checked = {name: value for name, value in values.items() if name in PARAMETERS}
    found = [not_finite(name, value) or PARAMETERS[name].metadata["rule"](name, value)
             for name, value in checked.items()]
    finite = {name: value for name, value in values.items() if not not_finite(name, value)}
    return [p for p in found if p] + _relations(finite)


def _build(cls, values: dict):
    arguments = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            arguments[field.name] = _build(field.type, values)
        elif is_parameter(field):
            if field.name not in values:
                raise TypeError(f"{cls.__name__} needs the parameter '{field.name}', which the "
                                "step does not take: add it to the component's signature.")
            arguments[field.name] = values[field.name]
    return cls(**arguments)


def from_parameters(values: dict, *classes, inputs: tuple = ()):
    """The options `classes` built from a step's flat parameters `values` (a component's
    locals; artifacts, which are not plain values, are left aside). Every parameter of each
    class must be there, and every plain value must be one of theirs or named in `inputs`:
    a misspelt or forgotten name is an error, never a default. Returns one instance per class
    (the instance itself for one class). Raises AdmodError when a value breaks its rule."""
    taken = set(inputs).union(*(parameter_fields(cls) for cls in classes))
    plain = {name for name, value in values.items()
             if isinstance(value, (str, int, float, bool))}
    unknown = sorted(plain - taken)
    if unknown:
        raise TypeError(f"{', '.join(unknown)}: not a parameter of "
                        f"{', '.join(cls.__name__ for cls in classes)}: fix the name, or add it "
                        "to the options.")
    built = tuple(_build(cls, values) for cls in classes)
    return built[0] if len(built) == 1 else built


def require_valid(values: dict) -> None:
    """Raises one AdmodError listing every problem of `values` (parameter name -> typed
    value), if any."""
    found = problems(values)
    if found:
        raise AdmodError("\n".join(found))
