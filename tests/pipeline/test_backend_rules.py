"""The compiled pipeline against the rules the real backends apply and kfp.local does not.

Each rule cites the Kubeflow Pipelines backend source it comes from (kubeflow/pipelines at the
tag named) or Vertex AI's documented limit. They run on the committed pipeline.yaml (Kubeflow,
newest backend), on compiles for the oldest supported backend (2.5.0) and the first that
collects a loop (2.14.0), and on a Vertex AI compile; `_violations` takes any spec, so the rules
can be run on an older pipeline.yaml (issue 21's closing note lists what they found in the one
before the fix).
"""

import ast
import glob
import json
import os
import re

import pytest
import yaml

from admod.errors import AdmodError
from admod.pipeline import compiled as compiled_file
from admod.pipeline import platform, submit
from admod.pipeline.compiled import write_pipeline as compile_pipeline

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


# backend/src/v2/driver/resolve.go, resolveInputs' type check (2.17.0): the driver compares each
# input's *value kind* at run time with the type the consumer declares ("input parameter %q type
# mismatch"): a STRING input takes any kind (turned into text), a number either NUMBER type, a
# bool BOOLEAN, a list LIST, a struct STRUCT (or TASK_FINAL_STATUS, TASK_CONFIG).
KIND_OF_TYPE = {"STRING": "string", "NUMBER_INTEGER": "number", "NUMBER_DOUBLE": "number",
                "BOOLEAN": "bool", "LIST": "list", "STRUCT": "struct",
                "TASK_FINAL_STATUS": "struct", "TASK_CONFIG": "struct"}


def _accepts(declared: str, kind: str) -> bool:
    return declared == "STRING" or KIND_OF_TYPE.get(declared) == kind


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "struct"}.get(type(value), "null")


def _source_kind(spec, dag, given: dict) -> tuple[str, str] | None:
    """(the value kind an input edge carries, where from), by the edge's kind: the parent DAG's
    input, a task's output (a loop's collected output among them), a constant, a status."""
    if "componentInputParameter" in given:
        name = given["componentInputParameter"]
        declared = dag.get("inputDefinitions", {}).get("parameters", {}).get(name)
        return (KIND_OF_TYPE[declared["parameterType"]], name) if declared else None
    if "taskOutputParameter" in given:
        output = given["taskOutputParameter"]
        producer = dag["dag"]["tasks"][output["producerTask"]]["componentRef"]["name"]
        declared = spec["components"][producer]["outputDefinitions"]["parameters"][
            output["outputParameterKey"]]
        return KIND_OF_TYPE[declared["parameterType"]], f"{output['producerTask']} output"
    if "runtimeValue" in given:
        return _json_kind(given["runtimeValue"]["constant"]), "a constant"
    if "taskFinalStatus" in given:
        return "struct", "a task's final status"
    return None


def _parameter_kind_mismatches(spec) -> list[str]:
    """Every input edge whose value kind the consumer's declared type refuses (KIND_OF_TYPE)."""
    problems = []
    for dag in _dags(spec):
        for task_name, task in dag["dag"]["tasks"].items():
            consumer = spec["components"][task["componentRef"]["name"]]
            wanted = consumer.get("inputDefinitions", {}).get("parameters", {})
            for name, given in task.get("inputs", {}).get("parameters", {}).items():
                source = _source_kind(spec, dag, given)
                if source and name in wanted and not _accepts(wanted[name]["parameterType"],
                                                              source[0]):
                    problems.append(f"{task_name}.{name}: {wanted[name]['parameterType']} fed "
                                    f"a {source[0]} from {source[1]}")
            problems += _raw_item_mismatches(spec, task_name, task)
    return problems


def _raw_item_mismatches(spec, task_name: str, task: dict) -> list[str]:
    """A loop over raw items (resolve.go, the iteration driver): each item is checked against
    the type the loop's DAG declares for it."""
    iterator = task.get("parameterIterator", {})
    if "raw" not in iterator.get("items", {}):
        return []
    declared = spec["components"][task["componentRef"]["name"]]["inputDefinitions"][
        "parameters"][iterator["itemInput"]]["parameterType"]
    return [f"{task_name} item {item!r}: {declared} fed a {_json_kind(item)}"
            for item in json.loads(iterator["items"]["raw"])
            if not _accepts(declared, _json_kind(item))]


CONDITION_OPERAND = re.compile(r"inputs\.parameter_values\['([^']+)'\]\s*(?:==|!=|<=|>=|<|>)\s*"
                               r"(true|false|'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?)")


def _condition_mismatches(spec) -> list[str]:
    """backend/src/v2/expression (2.17.0) evaluates a task's triggerPolicy.condition in CEL over
    the inputs' values: comparing a value with a literal of another kind ('true' against a
    bool) has no overload and fails the run at that task."""
    problems = []
    for dag in _dags(spec):
        for task_name, task in dag["dag"]["tasks"].items():
            condition = task.get("triggerPolicy", {}).get("condition", "")
            for name, literal in CONDITION_OPERAND.findall(condition):
                source = _source_kind(spec, dag, task["inputs"]["parameters"][name])
                kind = _json_kind(json.loads(literal.replace("'", '"')))
                if source and source[0] != kind:
                    problems.append(f"{task_name}: {name} (a {source[0]}) compared with {literal}")
    return problems


def _embedded_placeholders(spec) -> list[str]:
    """backend/src/v2/driver/resolve.go, resolveInputParameter (2.17.0) substitutes a
    {{$.…}} constant only when it is the whole value (switch valStr), workspace_path aside: one
    inside a longer string reaches the step verbatim."""
    found = []
    for dag in _dags(spec):
        for task_name, task in dag["dag"]["tasks"].items():
            for name, given in task.get("inputs", {}).get("parameters", {}).items():
                value = given.get("runtimeValue", {}).get("constant")
                if (isinstance(value, str) and "{{$." in value
                        and not re.fullmatch(r"\{\{\$\.\w+\}\}", value)
                        and "{{$.workspace_path}}" not in value):
                    found.append(f"{task_name}.{name}: {value!r}")
    return found


def _uri_assignments(source: str, where: str) -> list[str]:
    """`X.uri = …` (or +=, or annotated) and `setattr(X, "uri", …)` in Python `source`, by its
    syntax tree."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        if any(isinstance(t, ast.Attribute) and t.attr == "uri" for t in targets):
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)[:80]}")
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", ""))
                == "setattr" and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and node.args[1].value == "uri"):
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def _uri_rewrites(spec) -> list[str]:
    """backend/src/v2/component/launcher_v2.go uploads each output through
    objectstore/config.go KeyFromURI (2.17.0): a URI outside the pipeline root fails the task
    ("does not have expected bucket prefix"). Each executor's embedded component source, read
    by its syntax tree (the code it calls in admod/: `_package_uri_rewrites`)."""
    found = []
    for name, executor in spec["deploymentSpec"]["executors"].items():
        command = executor["container"].get("command", [])
        if command:
            found += _uri_assignments(command[-1], name)
    return found


def _package_uri_rewrites(folders=("admod", "components")) -> list[str]:
    found = []
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(folder, "*.py"))):
            with open(path) as f:
                found += _uri_assignments(f.read(), path)
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
    return {"parameter types": _parameter_kind_mismatches(spec),
            "conditions": _condition_mismatches(spec),
            "placeholders": _embedded_placeholders(spec),
            "output URIs rewritten": _uri_rewrites(spec),
            "retry windows": _short_retry_windows(spec)}


NO_VIOLATIONS = {"parameter types": [], "conditions": [], "placeholders": [],
                 "output URIs rewritten": [], "retry windows": []}


def _unknown_placeholders(text: str, version: str) -> list[str]:
    used = set(re.findall(r"\{\{\$\.(\w+)\}\}", text))
    return sorted(used - PLACEHOLDERS[_driver_release(version)])


def _unknown_kubernetes_fields(pipeline_file: str, version: str) -> list[str]:
    executors = _load(pipeline_file, 1)["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    used = {field for config in executors.values() for field in config}
    return sorted(used - KUBERNETES_FIELDS[_driver_release(version)])


def test_every_kubeflow_target_keeps_every_backend_rule(specs):
    for version in (NEWEST, platform.OLDEST_KFP, platform.FAN_IN_KFP):
        assert _violations(specs[version]) == NO_VIOLATIONS, version
    assert _package_uri_rewrites() == []


def test_the_vertex_spec_keeps_the_parameter_and_uri_rules(specs):
    violations = _violations(specs[platform.VERTEX])
    assert {**violations, "retry windows": []} == NO_VIOLATIONS


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


def test_the_rules_catch_what_they_name(tmp_path):
    """Each rule fails on a spec with the fault it names, one planted violation each."""
    spec = _load(COMMITTED)
    components = spec["components"]
    # the partition an integer, fed the loop's string item (as list_images -> list compiled)
    components["comp-check-images"]["inputDefinitions"]["parameters"]["partition"][
        "parameterType"] = "NUMBER_INTEGER"
    # the collected parts fed to a STRUCT input
    components["comp-gather-parts"]["inputDefinitions"]["parameters"]["parts"][
        "parameterType"] = "STRUCT"
    # the raw bucket items ("00" ...) fed to a loop that declares them integers
    components["comp-for-loop-3"]["inputDefinitions"]["parameters"][
        "pipelinechannel--loop-item-param-2"]["parameterType"] = "NUMBER_INTEGER"
    # the condition's operand a string, compared with true
    components["comp-evaluate"]["outputDefinitions"]["parameters"]["Output"][
        "parameterType"] = "STRING"
    # a placeholder inside a longer string
    push_task = components["comp-condition-4"]["dag"]["tasks"]["push"]
    push_task["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"] = (
        "run-{{$.pipeline_job_uuid}}")
    push = spec["deploymentSpec"]["executors"]["exec-push"]["container"]["command"]
    push[-1] += '\n    published.uri = version.pop("uri")\n    setattr(published, "uri", "x")\n'
    spec["root"]["dag"]["tasks"]["train-head"]["retryPolicy"]["backoffMaxDuration"] = "3600s"
    violations = _violations(spec)
    kinds = violations["parameter types"]
    assert ("check-images.partition: NUMBER_INTEGER fed a string from "
            "pipelinechannel--list-images-Output-loop-item") in kinds
    assert "gather-parts.parts: STRUCT fed a list from for-loop-1 output" in kinds
    assert "for-loop-3 item '00': NUMBER_INTEGER fed a string" in kinds
    assert violations["conditions"] == [
        "condition-4: pipelinechannel--evaluate-Output (a string) compared with true"]
    assert violations["placeholders"] == ["push.run_id: 'run-{{$.pipeline_job_uuid}}'"]
    assert [v.split(": ", 1)[1] for v in violations["output URIs rewritten"]] == [
        "published.uri = version.pop('uri')", "setattr(published, 'uri', 'x')"]
    assert violations["retry windows"] == ["train-head: 3600s"]
    # a rewrite inside the package the components call
    (tmp_path / "steps.py").write_text("def publish(out):\n    out.uri = 'gs://elsewhere/m'\n")
    assert _package_uri_rewrites((str(tmp_path),)) == [
        f"{tmp_path}/steps.py:2: out.uri = 'gs://elsewhere/m'"]


def test_what_the_driver_accepts_is_not_flagged():
    """An INTEGER input fed a DOUBLE value is a number either way: the driver takes it."""
    spec = _load(COMMITTED)
    spec["root"]["inputDefinitions"]["parameters"]["seed"]["parameterType"] = "NUMBER_DOUBLE"
    assert _violations(spec) == NO_VIOLATIONS


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
