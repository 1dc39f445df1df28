"""The components are thin: their parameters map onto the logic's options, nothing is lost."""

import dataclasses
import inspect

from kfp.dsl import Artifact

from admod import steps
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
        options = steps.TrainingOptions.from_parameters(parameters)
        for field in dataclasses.fields(options):
            if field.name != "augmentation":
                assert getattr(options, field.name) == parameters[field.name], field.name
        assert options.augmentation.rotation_degrees == parameters["rotation_degrees"]


def test_both_phases_take_the_same_training_parameters():
    head = set(_parameters(train_head)) - {"image_size", "weights", "allow_random_init"}
    fine = set(_parameters(fine_tune)) - {"head_model", "unfreeze"}
    assert head == fine

