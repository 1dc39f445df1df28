"""The compiled pipeline against the rules the real backends apply and kfp.local does not.

Each rule cites the Kubeflow Pipelines backend source it comes from (kubeflow/pipelines at tag
2.17.0) or Vertex AI's documented limit. They run on the committed pipeline.yaml (Kubeflow) and
on a fresh Vertex AI compile; `_violations` takes any spec, so the rules can be run on an older
pipeline.yaml (the closing note of issue 21 lists what they found in the one before the fix).
"""

import re

import pytest
import yaml

from admod.errors import AdmodError
from admod.pipeline import platform, submit
from admod.pipeline.cli import compile_pipeline

COMMITTED = "pipeline.yaml"
DAY_SECONDS = 24 * 3600


def _load(path):
    with open(path) as f:
        return list(yaml.safe_load_all(f))[0]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    vertex = str(tmp_path_factory.mktemp("vertex") / "pipeline.yaml")
    compile_pipeline(vertex, None, platform.VERTEX, None, 1)
    return {platform.KUBEFLOW: _load(COMMITTED), platform.VERTEX: _load(vertex)}


def _loop_inputs(spec) -> dict:
    (loop,) = [c for n, c in spec["components"].items() if n.startswith("comp-for-loop")]
    return loop["inputDefinitions"]["parameters"]


def _dags(spec):
    yield spec["root"]
    for component in spec["components"].values():
        if "dag" in component:
            yield component


def _parameter_type_mismatches(spec) -> list[str]:
    """backend/src/v2/driver/resolve.go, handleParamTypeValidationAndConversion (2.17.0): a value
    for a STRING input is turned into text, any other declared type must match the value's kind
    ("input parameter %q type mismatch"). So a consumer's type must be what feeds it."""
    problems = []
    for dag in _dags(spec):
        declared = {name: p["parameterType"] for name, p in
                    dag.get("inputDefinitions", {}).get("parameters", {}).items()}
        for task_name, task in dag["dag"]["tasks"].items():
            consumer = spec["components"][task["componentRef"]["name"]]
            wanted = consumer.get("inputDefinitions", {}).get("parameters", {})
            for name, given in task.get("inputs", {}).get("parameters", {}).items():
                source = given.get("componentInputParameter")
                if source is None or source not in declared or name not in wanted:
                    continue
                want, have = wanted[name]["parameterType"], declared[source]
                if want != have and want != "STRING":
                    problems.append(f"{task_name}.{name}: {want} fed from {source}: {have}")
    return problems


def _uri_rewrites(spec) -> list[str]:
    """backend/src/v2/component/launcher_v2.go uploads each output through
    objectstore/config.go KeyFromURI (2.17.0): a URI outside the pipeline root fails the task
    ("does not have expected bucket prefix")."""
    found = []
    for name, executor in spec["deploymentSpec"]["executors"].items():
        source = "\n".join(executor["container"].get("command", []))
        found += [f"{name}: {m}" for m in re.findall(r"\w+\.uri\s*=[^=].*", source)]
    return found


def _short_retry_windows(spec) -> list[str]:
    """backend/src/v2/compiler/argocompiler/container.go (2.17.0) compiles backoffMaxDuration
    into Argo's retryStrategy.backoff.maxDuration, a window from the first attempt that also
    stops a retry (argo-workflows #13044): shorter than a day, a long GPU step is never retried."""
    short = []
    for dag in _dags(spec):
        for task_name, task in dag["dag"]["tasks"].items():
            window = task.get("retryPolicy", {}).get("backoffMaxDuration")
            if window and int(window.rstrip("s")) < DAY_SECONDS:
                short.append(f"{task_name}: {window}")
    return short


def _violations(spec) -> dict[str, list[str]]:
    return {"parameter types": _parameter_type_mismatches(spec),
            "output URIs rewritten": _uri_rewrites(spec),
            "retry windows": _short_retry_windows(spec)}


def test_the_committed_kubeflow_spec_keeps_every_backend_rule(specs):
    assert _violations(specs[platform.KUBEFLOW]) == {
        "parameter types": [], "output URIs rewritten": [], "retry windows": []}


def test_the_vertex_spec_keeps_the_parameter_and_uri_rules(specs):
    violations = _violations(specs[platform.VERTEX])
    assert violations["parameter types"] == [] and violations["output URIs rewritten"] == []


def test_the_loop_item_is_an_integer_like_the_partition_it_feeds(specs):
    for spec in specs.values():
        item = _loop_inputs(spec)["pipelinechannel--list-images-Output-loop-item"]
        assert item["parameterType"] == "NUMBER_INTEGER"


def test_the_rules_catch_what_they_name():
    """Each rule fails on a spec with the fault it names (as the pre-fix pipeline.yaml had)."""
    spec = _load(COMMITTED)
    _loop_inputs(spec)["pipelinechannel--list-images-Output-loop-item"]["parameterType"] = "STRING"
    push = spec["deploymentSpec"]["executors"]["exec-push"]["container"]["command"]
    push[-1] += '\n    published.uri = version.pop("uri")\n'
    spec["root"]["dag"]["tasks"]["train-head"]["retryPolicy"]["backoffMaxDuration"] = "3600s"
    violations = _violations(spec)
    assert violations["parameter types"] == [
        "check-images.partition: NUMBER_INTEGER fed from "
        "pipelinechannel--list-images-Output-loop-item: STRING"]
    assert violations["output URIs rewritten"] == ['exec-push: published.uri = version.pop("uri")']
    assert violations["retry windows"] == ["train-head: 3600s"]


def test_vertex_refuses_a_fan_in_wider_than_it_collects():
    """Vertex AI passes at most 100 artifacts to a dsl.Collected input."""
    ok = {"data_root": "gs://b/d", "registry_root": "gs://b/r", "split_workers": 100}
    submit.check_cloud_parameters(ok, platform.VERTEX)
    submit.check_cloud_parameters({**ok, "split_workers": 1000}, platform.KUBEFLOW)
    with pytest.raises(AdmodError, match="split_workers=101 is more than Vertex AI collects"):
        submit.check_cloud_parameters({**ok, "split_workers": 101}, platform.VERTEX)


def test_a_spec_is_submitted_only_to_the_platform_it_was_compiled_for(tmp_path):
    vertex = str(tmp_path / "vertex.yaml")
    compile_pipeline(vertex, None, platform.VERTEX, None, 1)
    assert submit.compiled_for(COMMITTED) == platform.KUBEFLOW
    assert submit.compiled_for(vertex) == platform.VERTEX
    with pytest.raises(AdmodError, match="was compiled for vertex, not kubeflow"):
        submit.check_compiled_for(vertex, platform.KUBEFLOW)
    with pytest.raises(AdmodError, match="was compiled for kubeflow, not vertex"):
        submit.check_compiled_for(COMMITTED, platform.VERTEX)
