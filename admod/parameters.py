"""Every pipeline parameter checked at once, before anything runs: names, types, ranges, choices.

The command line checks what a user passes to `run`, `submit` and `schedule` against the
compiled pipeline's parameters (`check`); the pipeline's first step, check-parameters, checks
the ranges again for runs started any other way (the UI, the API, a schedule). Each problem is
one sentence naming the parameter, and all of them are reported together.
"""

import dataclasses
import difflib

from admod import defaults
from admod.errors import AdmodError

# KFP's parameter types, as the compiled pipeline names them.
INTEGER, NUMBER, STRING, BOOLEAN = "NUMBER_INTEGER", "NUMBER_DOUBLE", "STRING", "BOOLEAN"
RESNET50_BLOCKS = tuple(f"conv{stage}_block{block}" for stage, blocks in
                        ((2, 3), (3, 4), (4, 6), (5, 3)) for block in range(1, blocks + 1))


def _within(low, high, low_open=False, high_open=False):
    def check(name, value):
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            return f"{name}={value} is out of range: use a value in {left}{low:g}, {high:g}{right}."
    return check


def _at_least(low):
    def check(name, value):
        if value < low:
            return f"{name}={value} is too small: use {low} or more."
    return check


def _one_of(choices):
    def check(name, value):
        if value not in choices:
            return f"{name}='{value}' is unknown: use one of {', '.join(choices)}."
    return check


def _not_empty(name, value):
    if not str(value).strip():
        return f"{name} is empty: pass a folder or a gs:// URI."


def _anything(name, value):
    return None


FRACTION = _within(0, 1, low_open=True, high_open=True)
SHARE = _within(0, 1)
LEARNING_RATE = _within(0, 1, low_open=True)

RULES = {
    "data_root": _not_empty,
    "registry_root": _not_empty,
    "val_fraction": FRACTION,
    "test_fraction": _within(0, 1, high_open=True),
    "seed": _at_least(0),
    "min_image_side": _at_least(1),
    "max_image_pixels": _at_least(1),
    "split_workers": _within(1, 1000),
    "image_size": _within(32, 2048),  # ResNet50 needs 32 px at least
    "batch_size": _at_least(1),
    "weights": _not_empty,
    "allow_random_init": _anything,
    "require_gpu": _anything,
    "head_epochs": _at_least(1),
    "head_learning_rate": LEARNING_RATE,
    "fine_tune_epochs": _at_least(1),
    "fine_tune_learning_rate": LEARNING_RATE,
    "unfreeze": _one_of(("all",) + RESNET50_BLOCKS),
    "early_stopping_patience": _at_least(1),
    "rotation_degrees": _within(0, 180),
    "width_shift": _within(0, 1, high_open=True),
    "height_shift": _within(0, 1, high_open=True),
    "shear_degrees": _within(0, 90, high_open=True),
    "zoom": _within(0, 1, high_open=True),
    "horizontal_flip": _anything,
    "class_weighting": _one_of(defaults.CLASS_WEIGHTINGS),
    "class_weight_minority_share": _within(0, 0.5, low_open=True),
    "reduce_lr_patience": _at_least(1),
    "reduce_lr_factor": FRACTION,
    "mixed_precision": _anything,
    "xla": _anything,
    "checkpoint_root": _anything,
    "threshold_rule": _one_of(defaults.THRESHOLD_RULES),
    "threshold_target": FRACTION,
    "min_accuracy": SHARE,
    "min_auc": SHARE,
    "min_precision": SHARE,
    "min_recall": SHARE,
    "gating_metric": _one_of(defaults.GATING_METRICS),
    "max_regression": _within(-1, 1, low_open=True, high_open=True),
    "vertex_model": _anything,
    "vertex_project": _anything,
    "vertex_location": _anything,
    "vertex_serving_image": _anything,
    "vertex_default_alias": _anything,
    "experiment": _anything,
    "vertex_tensorboard": _anything,
}


def _relations(values: dict) -> list[str]:
    problems = []
    if values.get("val_fraction", 0) + values.get("test_fraction", 0) >= 1:
        problems.append(f"val_fraction + test_fraction = "
                        f"{values['val_fraction'] + values['test_fraction']:g} leaves no "
                        "training images: keep their sum under 1.")
    if values.get("max_image_pixels", 1) < values.get("min_image_side", 0) ** 2:
        problems.append("max_image_pixels is smaller than min_image_side squared: no image "
                        "could pass both.")
    from admod import vertex_experiments, vertex_registry

    for check in (vertex_registry.check_target, vertex_experiments.check_target):
        try:
            check(values)
        except AdmodError as problem:
            problems.append(str(problem))
    return problems


def range_problems(values: dict) -> list[str]:
    """One sentence per value out of its range or choices, and per impossible combination."""
    problems = [RULES[name](name, value) for name, value in values.items() if name in RULES]
    return [p for p in problems if p] + _relations(values)


def check_ranges(values: dict) -> None:
    """Raises one AdmodError listing every problem of `values` (all parameters, typed)."""
    problems = range_problems(values)
    if problems:
        raise AdmodError("\n".join(problems))


def _typed(name: str, value, kind: str):
    """`value` as the type the pipeline declares for `name`, or a sentence saying why not."""
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value, None
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true", None
        return None, f"{name}={value!r} is not true or false."
    if kind in (INTEGER, NUMBER) and isinstance(value, bool):
        return None, f"{name}={value!r} is not a number."
    if kind == INTEGER:
        if isinstance(value, int):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value), None
        return None, f"{name}={value!r} is not a whole number."
    if kind == NUMBER:
        try:
            return float(value), None
        except (TypeError, ValueError):
            return None, f"{name}={value!r} is not a number."
    if isinstance(value, (dict, list)):
        return None, f"{name}={value!r} is not a single value."
    return str(value), None


def check(given: dict, declared: dict[str, tuple[str, object]]) -> dict:
    """`given` checked against the pipeline's `declared` parameters (name -> (type, default or
    None when required)): returns the values typed as the pipeline declares them (an integer
    literal for a float parameter becomes a float). Raises one AdmodError listing every
    unknown name, missing value, wrong type and value out of range."""
    problems, typed, wrong_type = [], {}, set()
    for name, value in given.items():
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = (f"did you mean {close[0]}?" if close
                    else "see 'admod run --help' and the README.")
            problems.append(f"'{name}' is not a parameter of the pipeline: {hint}")
            continue
        typed[name], problem = _typed(name, value, declared[name][0])
        if problem:
            problems.append(problem)
            wrong_type.add(name)
    missing = [n for n, (_, default) in declared.items() if default is None and n not in given]
    problems += [f"{name} is missing: pass -p {name}=... ." for name in missing]
    # Ranges too, of every value that has its type, so that one pass reports every problem.
    values = {name: default for name, (_, default) in declared.items() if default is not None}
    values.update({name: value for name, value in typed.items() if name not in wrong_type})
    problems += range_problems(values)
    if problems:
        raise AdmodError("\n".join(problems))
    return typed


def declared_parameters(pipeline_file: str) -> dict[str, tuple[str, object]]:
    """name -> (KFP type, default or None) of a compiled pipeline's parameters."""
    import yaml

    with open(pipeline_file) as f:
        spec = next(yaml.safe_load_all(f))
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    return {name: (p["parameterType"], p.get("defaultValue")) for name, p in inputs.items()}


def options(cls, values: dict, **given):
    """A step's options dataclass `cls` from its flat parameters (a component's `locals()`):
    each field from the parameter of the same name, or its default when the step has no such
    parameter; the fields in `given` as passed. Every step builds its options this way."""
    names = {field.name for field in dataclasses.fields(cls)} - set(given)
    return cls(**given, **{name: values[name] for name in names if name in values})
