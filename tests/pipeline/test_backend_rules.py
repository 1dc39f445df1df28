"""The compiled pipeline against the rules the real backends apply and kfp.local does not.

Each rule cites the Kubeflow Pipelines backend source it comes from (kubeflow/pipelines at the
tag named) or Vertex AI's documented limit. They run on the committed pipeline.yaml (Kubeflow,
newest backend), on compiles for the oldest supported backend (2.5.0) and the first that
collects a loop (2.14.0), and on a Vertex AI compile; `_violations` takes any spec, so the rules
can be run on an older pipeline.yaml (issue 21's closing note lists what they found in the one
before the fix).
"""

import re

import pytest
import yaml

from admod.errors import AdmodError
from admod.pipeline import compiled as compiled_file
from admod.pipeline import platform, submit
from admod.pipeline.cli import compile_pipeline

COMMITTED = "pipeline.yaml"
DAY_SECONDS = 24 * 3600
NEWEST = "2.17.0"

# The placeholders each backend substitutes: every {{$.…}} string in backend/src/v2 (driver.go)
# at that tag; 2.4.1 substitutes none, so {{$.pipeline_job_uuid}} reaches the step verbatim.
PLACEHOLDERS = {
    "2.5.0": {"pipeline_job_name", "pipeline_job_resource_name", "pipeline_job_uuid",
              "pipeline_task_name", "pipeline_task_uuid"},
    "2.17.0": {"pipeline_job_create_time_utc", "pipeline_job_name", "pipeline_job_resource_name",
               "pipeline_job_schedule_time_utc", "pipeline_job_uuid", "pipeline_task_name",
               "pipeline_task_uuid", "workspace_path"},
}
# The kubernetes executor config fields each backend's driver reads
# (kubernetesExecutorConfig.Get…() in backend/src/v2/driver/driver.go at 2.5.0, k8s.go at 2.17.0).
KUBERNETES_FIELDS = {
    "2.5.0": {"activeDeadlineSeconds", "configMapAsEnv", "configMapAsVolume", "emptyDirMounts",
              "fieldPathAsEnv", "genericEphemeralVolume", "imagePullPolicy", "imagePullSecret",
              "nodeSelector", "pvcMount", "secretAsEnv", "secretAsVolume", "tolerations"},
    "2.17.0": {"activeDeadlineSeconds", "configMapAsEnv", "configMapAsVolume", "emptyDirMounts",
               "fieldPathAsEnv", "genericEphemeralVolume", "imagePullPolicy", "imagePullSecret",
               "nodeAffinity", "nodeSelector", "pvcMount", "secretAsEnv", "secretAsVolume",
               "securityContext", "tolerations"},
}


def _load(path, document=0):
    with open(path) as f:
        return list(yaml.safe_load_all(f))[document]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """target -> its pipeline file: "vertex", or a Kubeflow Pipelines backend release."""
    folder = tmp_path_factory.mktemp("targets")
    files = {NEWEST: COMMITTED}
    for version in (platform.OLDEST_KFP, platform.FAN_IN_KFP):
        files[version] = str(folder / f"kubeflow-{version}.yaml")
        compile_pipeline(files[version], None, platform.KUBEFLOW, None, 1, version)
    files[platform.VERTEX] = str(folder / "vertex.yaml")
    compile_pipeline(files[platform.VERTEX], None, platform.VERTEX, None, 1)
    return files


@pytest.fixture(scope="module")
def specs(compiled):
    return {target: _load(path) for target, path in compiled.items()}


def _driver_release(version: str) -> str:
    """The release whose source table applies to backend `version`."""
    return max((v for v in PLACEHOLDERS if platform.version_tuple(v) <=
                platform.version_tuple(version)), key=platform.version_tuple)


def _loop_inputs(spec) -> dict:
    """The input parameters of every ParallelFor's DAG (their loop items among them)."""
    return {name: parameter for n, c in spec["components"].items() if n.startswith("comp-for-loop")
            for name, parameter in c["inputDefinitions"]["parameters"].items()}


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


def _unknown_placeholders(text: str, version: str) -> list[str]:
    used = set(re.findall(r"\{\{\$\.(\w+)\}\}", text))
    return sorted(used - PLACEHOLDERS[_driver_release(version)])


def _unknown_kubernetes_fields(pipeline_file: str, version: str) -> list[str]:
    executors = _load(pipeline_file, 1)["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    used = {field for config in executors.values() for field in config}
    return sorted(used - KUBERNETES_FIELDS[_driver_release(version)])


def test_every_kubeflow_target_keeps_every_backend_rule(specs):
    for version in (NEWEST, platform.OLDEST_KFP, platform.FAN_IN_KFP):
        assert _violations(specs[version]) == {
            "parameter types": [], "output URIs rewritten": [], "retry windows": []}, version


def test_the_vertex_spec_keeps_the_parameter_and_uri_rules(specs):
    violations = _violations(specs[platform.VERTEX])
    assert violations["parameter types"] == [] and violations["output URIs rewritten"] == []


def test_every_placeholder_and_kubernetes_field_is_one_the_target_knows(compiled):
    for version in (NEWEST, platform.OLDEST_KFP, platform.FAN_IN_KFP):
        with open(compiled[version]) as f:
            assert _unknown_placeholders(f.read(), version) == [], version
        assert _unknown_kubernetes_fields(compiled[version], version) == [], version
    # what the rule would say of 2.4.1, which substitutes none
    assert _unknown_placeholders("{{$.pipeline_job_uuid}}", "2.5.0") == []
    PLACEHOLDERS["2.4.1"] = set()
    try:
        assert _unknown_placeholders("{{$.pipeline_job_uuid}}", "2.4.1") == ["pipeline_job_uuid"]
    finally:
        del PLACEHOLDERS["2.4.1"]


def test_the_split_fans_in_only_where_the_backend_collects_a_loop(specs, compiled):
    """dsl.Collected of artifacts reaches the backend in 2.14.0 (kubeflow/pipelines #11725);
    before, the split is one task."""
    for target in (NEWEST, platform.FAN_IN_KFP, platform.VERTEX):
        assert compiled_file.fans_in(compiled[target]), target
        loop_inputs = _loop_inputs(specs[target])
        item = loop_inputs["pipelinechannel--list-images-Output-loop-item"]
        wanted = specs[target]["components"]["comp-check-images"]["inputDefinitions"]
        assert item["parameterType"] == wanted["parameters"]["partition"]["parameterType"]
        # the buckets' loop: its items typed STRING, as merge-bucket's bucket is
        (bucket_item,) = [p for name, p in loop_inputs.items()
                          if re.fullmatch(r"pipelinechannel--loop-item-param-\d+", name)]
        merge = specs[target]["components"]["comp-merge-bucket"]["inputDefinitions"]
        assert bucket_item["parameterType"] == merge["parameters"]["bucket"]["parameterType"] \
            == "STRING"
    oldest = specs[platform.OLDEST_KFP]
    assert not compiled_file.fans_in(compiled[platform.OLDEST_KFP])
    assert not any(name.startswith("comp-for-loop") for name in oldest["components"])
    assert {"split-in-one-task", "train-head"} <= set(oldest["root"]["dag"]["tasks"])


def test_the_rules_catch_what_they_name():
    """Each rule fails on a spec with the fault it names (as the pre-fix pipeline.yaml had)."""
    spec = _load(COMMITTED)
    # the partition an integer, fed the loop's STRING item (as list_images -> list compiled)
    check = spec["components"]["comp-check-images"]["inputDefinitions"]["parameters"]
    check["partition"]["parameterType"] = "NUMBER_INTEGER"
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
    assert compiled_file.compiled_for(COMMITTED) == platform.KUBEFLOW
    assert compiled_file.compiled_for(vertex) == platform.VERTEX
    with pytest.raises(AdmodError, match="was compiled for vertex, not kubeflow"):
        submit.check_compiled_for(vertex, platform.KUBEFLOW)
    with pytest.raises(AdmodError, match="was compiled for kubeflow, not vertex"):
        submit.check_compiled_for(COMMITTED, platform.VERTEX)
