"""The components are thin: their parameters map onto the logic's options, nothing is lost."""

import dataclasses
import inspect

from kfp.dsl import Artifact

from admod import steps, training
from admod.components import fine_tune, train_head


def _parameters(component) -> dict:
    """A stand-in value for each parameter of `component`'s Python function."""
    values = {}
    for name, parameter in inspect.signature(component).parameters.items():
        annotation = parameter.annotation
        values[name] = {int: 1, float: 0.5, bool: True, str: "x"}.get(annotation, Artifact())
    return values


def test_training_components_feed_every_training_option():
    for component in (train_head, fine_tune):
        parameters = _parameters(component)
        options = training.TrainingOptions.from_parameters(parameters)
        for field in dataclasses.fields(options):
            # the method's, fixed; state_key is the step's output URI (the next test)
            if field.name not in ("augmentation", "min_learning_rate", "state_key"):
                assert getattr(options, field.name) == parameters[field.name], field.name
        assert options.augmentation.rotation_degrees == parameters["rotation_degrees"]


def test_training_state_is_keyed_on_the_steps_own_model_output(monkeypatch, tmp_path):
    """Unique to the run and the same on its retries, and never a pipeline input (which would
    enter the cache key); not the run id."""
    from kfp.dsl import Model

    seen = []

    def record(**kwargs):
        seen.append(kwargs["options"].state_key)
        raise SystemExit(0)

    monkeypatch.setattr(steps, "train_head_step", record)
    monkeypatch.setattr(steps, "fine_tune_step", record)
    for component in (train_head, fine_tune):
        parameters = _parameters(component)
        parameters["model"] = Model(uri=str(tmp_path / component.__name__ / "model"))
        assert "run_id" not in parameters
        try:
            component(**parameters)
        except SystemExit:
            pass
    assert seen == [str(tmp_path / "train_head" / "model"), str(tmp_path / "fine_tune" / "model")]


def test_both_phases_take_the_same_training_parameters():
    head = set(_parameters(train_head)) - {"image_size", "weights", "allow_random_init"}
    fine = set(_parameters(fine_tune)) - {"head_model", "unfreeze"}
    assert head == fine



def test_the_evaluate_component_feeds_every_evaluation_option():
    from admod import blessing
    from admod.components import evaluate

    parameters = _parameters(evaluate)
    parameters.update(min_accuracy=0.1, min_auc=0.2, min_precision=0.3, min_recall=0.4,
                      gating_metric="pr_auc", max_regression=0.01)
    options = steps.EvaluationOptions.from_parameters(parameters)
    assert options.criteria == blessing.Criteria(
        {"accuracy": 0.1, "roc_auc": 0.2, "precision": 0.3, "recall": 0.4}, "pr_auc", 0.01)
    for name in ("threshold_rule", "threshold_target", "batch_size", "require_gpu"):
        assert getattr(options, name) == parameters[name], name


def test_the_split_components_feed_every_split_option():
    from admod import parameters as parameters_lib, split as split_lib
    from admod.components import check_images, split

    for component, names in ((check_images, ("min_image_side", "max_image_pixels")),
                             (split, ("val_fraction", "test_fraction", "seed",
                                      "max_image_pixels"))):
        parameters = _parameters(component)
        config = parameters_lib.options(split_lib.SplitConfig, parameters)
        for name in names:
            assert getattr(config, name) == parameters[name], name
