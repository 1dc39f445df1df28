"""One home per parameter: the options dataclasses, the pipeline's signature and the
components' signatures say the same, and each component builds its options from exactly its
parameters (admod.options.from_parameters refuses a missing or unknown name).

Adding a parameter means adding it to its options, to the pipeline's signature and to the
signatures of the components that build those options (check-parameters takes them all): a
forgotten one fails here, naming it."""

import inspect
import logging

import pytest
from kfp.dsl import Artifact

from admod import options, steps
from admod.components import (STEP_FUNCTIONS, check_parameters, fine_tune, gather_parts,
                               train_head)
from admod.options import DEFAULTS, PARAMETERS
from admod.pipeline import pipeline, platform

PLAIN = (str, int, float, bool)


@pytest.fixture(autouse=True)
def _logging_restored():
    """A component sets logging up on the test's captured stderr, closed after the test: later
    tests in this process log where they did before."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _plain_parameters(function) -> dict[str, type]:
    return {name: p.annotation for name, p in inspect.signature(function).parameters.items()
            if p.annotation in PLAIN}


def _pipeline_signature() -> inspect.Signature:
    built = pipeline.build(platform.Platform())
    return inspect.signature(built.pipeline_func)


def test_the_pipeline_signature_is_the_options_parameters_with_their_types_and_defaults():
    signature = _pipeline_signature()
    assert list(signature.parameters) and set(signature.parameters) == set(PARAMETERS), (
        set(signature.parameters) ^ set(PARAMETERS))
    for name, declared in signature.parameters.items():
        field = PARAMETERS[name]
        assert declared.annotation is field.type, name
        expected = inspect.Parameter.empty if field.default is options.REQUIRED else field.default
        assert declared.default == expected, name


def test_the_run_form_describes_every_parameter_from_its_options():
    documented = pipeline.build(platform.Platform()).pipeline_spec.root.input_definitions
    for name, field in PARAMETERS.items():
        assert documented.parameters[name].description == field.metadata["description"], name


def test_check_parameters_takes_every_parameter_with_the_options_type():
    assert _plain_parameters(check_parameters) == {n: f.type for n, f in PARAMETERS.items()}


def _stand_ins(function, tmp_path) -> dict:
    """The defaults for a component's parameters (a valid run), artifacts under tmp_path."""
    values = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.annotation in PLAIN:
            values[name] = getattr(DEFAULTS, name, "gs://bucket/x")
        else:
            values[name] = Artifact(uri=str(tmp_path / function.__name__ / name))
            values[name].path = str(tmp_path / function.__name__ / name)
    return values


class Built(Exception):
    """Raised by the spy once the component has built its options."""


@pytest.mark.parametrize("component", [f for f in STEP_FUNCTIONS
                                       if f is not check_parameters],
                         ids=lambda f: f.__name__)
def test_each_component_builds_its_options_from_exactly_its_parameters(component, tmp_path,
                                                                       monkeypatch):
    """from_parameters raises TypeError when the component lacks one of its options'
    parameters, or takes a plain value no options (nor its declared inputs) have; the types in
    the signature are the options' types."""
    built = []
    real = options.from_parameters

    def spy(values, *classes, **kwargs):
        real(values, *classes, **kwargs)
        built.extend(classes)
        raise Built

    monkeypatch.setattr(options, "from_parameters", spy)
    with pytest.raises(Built):
        component(**_stand_ins(component, tmp_path))
    assert built, f"{component.__name__} builds no options"
    declared = _plain_parameters(component)
    for cls in built:
        for name, field in options.parameter_fields(cls).items():
            assert declared[name] is field.type, (component.__name__, name)


def test_gather_parts_writes_the_uris_and_the_near_copy_groups_as_json(demo_root, tmp_path):
    import json

    from admod import split
    from tests.support import splitting

    config = splitting.split_config(seed=3)
    parts = splitting.checked_parts(demo_root, str(tmp_path / "work"), config, 2)
    gathered = Artifact(uri=str(tmp_path / "gathered"))
    gathered.path = str(tmp_path / "gathered")
    gather_parts(parts=parts, val_fraction=0.2, test_fraction=0.0, seed=3, gathered=gathered)
    written = json.load(open(gathered.path))
    assert written["parts"] == parts
    expected = split.group_near_copies([f"{p}/{split.PART_KEYS}" for p in parts],
                                       config["options"])
    assert written["near_copies"] == expected.to_json()
    assert gathered.metadata["near_copy_groups"] == len(expected.groups)


def test_a_misspelt_or_missing_parameter_is_an_error_not_a_default():
    values = {name: getattr(DEFAULTS, name) for name in options.parameter_fields(
        options.HeadOptions)}
    with pytest.raises(TypeError, match="head_epoch: not a parameter of HeadOptions"):
        options.from_parameters({**values, "head_epoch": 3}, options.HeadOptions)
    del values["head_epochs"]
    with pytest.raises(TypeError, match="needs the parameter 'head_epochs'"):
        options.from_parameters(values, options.HeadOptions)


def test_training_state_is_keyed_on_the_steps_own_model_output(monkeypatch, tmp_path):
    """Unique to the run and the same on its retries, and never a pipeline input (which would
    enter the cache key); not the run id."""
    from kfp.dsl import Model

    seen = []

    def record(**kwargs):
        seen.append((kwargs["options"].state_key, kwargs["options"].epochs))
        raise Built

    monkeypatch.setattr(steps, "train_head_step", record)
    monkeypatch.setattr(steps, "fine_tune_step", record)
    for component in (train_head, fine_tune):
        parameters = _stand_ins(component, tmp_path)
        parameters["model"] = Model(uri=str(tmp_path / component.__name__ / "model"))
        assert "run_id" not in parameters
        with pytest.raises(Built):
            component(**parameters)
    assert seen == [(str(tmp_path / "train_head" / "model"), DEFAULTS.head_epochs),
                    (str(tmp_path / "fine_tune" / "model"), DEFAULTS.fine_tune_epochs)]
