"""Every parameter checked before anything runs: one sentence per problem, all at once."""

import inspect

import pytest

from admod import options, parameters
from admod.pipeline import compiled
from admod.errors import USER_ERROR_STATUS, AdmodError, exit_on_user_error
from tests.pipeline.test_compile import COMMITTED
from tests.support.imports import loaded_by

DECLARED = compiled.declared_parameters(COMMITTED)
ROOTS = {"data_root": "gs://b/ads", "registry_root": "gs://b/models"}


def _problems(**given):
    with pytest.raises(AdmodError) as raised:
        parameters.checked({**ROOTS, **given}, DECLARED)
    return str(raised.value).splitlines()


def test_every_pipeline_parameter_has_a_rule_and_the_check_step_takes_them_all():
    from admod.components import check_parameters

    assert set(options.PARAMETERS) == set(DECLARED)
    assert set(inspect.signature(check_parameters).parameters) == set(DECLARED) | {"checked"}


def test_an_integer_literal_for_a_float_parameter_is_a_float():
    typed = parameters.checked({**ROOTS, "min_accuracy": 0, "head_learning_rate": "1e-4",
                              "horizontal_flip": "false", "head_epochs": 5.0}, DECLARED)
    assert typed["min_accuracy"] == 0.0 and isinstance(typed["min_accuracy"], float)
    assert typed["head_learning_rate"] == 1e-4 and typed["horizontal_flip"] is False
    assert typed["head_epochs"] == 5 and isinstance(typed["head_epochs"], int)


@pytest.mark.parametrize("given, words", [
    ({"head_epoch": 5}, ["'head_epoch' is not a parameter", "did you mean head_epochs?"]),
    ({"min_accuracy": "high"}, ["min_accuracy='high' is not a number"]),
    ({"head_epochs": 2.5}, ["head_epochs=2.5 is not a whole number"]),
    ({"image_size": 0}, ["image_size=0 is out of range", "[32, 2048]"]),
    ({"unfreeze": "conv9_block1"}, ["unfreeze='conv9_block1' is unknown", "conv5_block3"]),
    ({"threshold_rule": "min_precison"}, ["threshold_rule='min_precison' is unknown"]),
    ({"gating_metric": "auc"}, ["gating_metric='auc' is unknown", "roc_auc"]),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, ["val_fraction + test_fraction = 1.1"]),
    ({"fine_tune_epochs": 0}, ["fine_tune_epochs=0 is too small"]),
    ({"batch_size": -1}, ["batch_size=-1 is too small"]),
    ({"class_weighting": "inverse"}, ["class_weighting='inverse' is unknown"]),
    ({"calibration": "isotonic"}, ["calibration='isotonic' is unknown", "platt"]),
    ({"max_ece": 1.5}, ["max_ece=1.5 is out of range"]),
])
def test_each_mistake_is_one_sentence_naming_the_parameter(given, words):
    (problem,) = _problems(**given)
    assert all(word in problem for word in words), problem


def test_every_problem_is_reported_at_once():
    problems = _problems(image_size=0, unfreeze="conv9_block1", gating_metric="auc")
    assert len(problems) == 3


def test_required_parameters():
    with pytest.raises(AdmodError, match="registry_root is missing"):
        parameters.checked({"data_root": "gs://b/ads"}, DECLARED)


def test_a_user_error_exits_with_its_own_status(capsys):
    def mistaken():
        raise AdmodError("image_size=0 is out of range.")

    with pytest.raises(SystemExit) as exited:
        exit_on_user_error(mistaken)
    assert exited.value.code == USER_ERROR_STATUS != 1
    assert capsys.readouterr().err == "admod: image_size=0 is out of range.\n"


def test_the_check_step_refuses_a_missing_weights_file(tmp_path):
    from admod import check_step

    values = {name: default for name, (_, default) in DECLARED.items() if default is not None}
    values.update(ROOTS, weights=str(tmp_path / "resnet.h5"))
    with pytest.raises(AdmodError, match="resnet.h5' does not exist"):
        check_step.check_parameters_step(values)
    values["weights"] = "imagenet"
    check_step.check_parameters_step(values)


FLOATS = sorted(name for name, field in options.PARAMETERS.items()
                if isinstance(field.default, float))


def test_the_check_step_runs_without_tensorflow_or_pandas(tmp_path):
    """The first step ends a mistaken run in a second: with Keras imported it took six."""
    (tmp_path / "data" / "allowed_ads").mkdir(parents=True)
    values = {**vars(options.DEFAULTS), "data_root": str(tmp_path / "data"),
              "registry_root": str(tmp_path / "registry")}
    run = (f"import admod.components.check_parameters, admod.errors; "
           f"from admod import check_step, logs; check_step.check_parameters_step({values!r}, "
           f"{str(tmp_path / 'checked.json')!r}, {str(tmp_path / 'root')!r})")
    assert loaded_by(run, ("tensorflow", "keras", "pandas")) == [False, False, False]
    assert (tmp_path / "checked.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_no_rule_lets_a_value_that_is_not_finite_through(value):
    """NaN compares false with every bound: checked before each parameter's own rule, so a
    gate (min_auc=nan) or a fraction (val_fraction=nan: every image to train) cannot slip by."""
    for name in FLOATS:
        assert options.problems({name: value}) == [
            f"{name}={value} is not a finite number: pass a number."]
    with pytest.raises(AdmodError, match="min_auc=nan is not a finite number"):
        options.BlessingOptions(min_auc=float("nan"))


def test_the_check_parameters_step_refuses_nan_for_runs_started_elsewhere():
    from admod import check_step

    values = {**ROOTS, **vars(options.DEFAULTS), "max_regression": float("nan")}
    with pytest.raises(AdmodError, match="max_regression=nan is not a finite number"):
        check_step.check_parameters_step(values)
