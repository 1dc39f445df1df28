"""Both platforms' compiles are valid for their engines, with GPUs only where they belong."""

import os
import shutil
import subprocess

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from admod.components.image import DEFAULT_IMAGE
from tests.pipeline.test_compile import COMMITTED, REPO, _compile

GPU_STEPS = {"train-head", "fine-tune", "evaluate"}
CPU_STEPS = {"split", "push"}


def _documents(path):
    with open(path) as f:
        documents = list(yaml.safe_load_all(f))
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec(),
                                 ignore_unknown_fields=False)
    platform = documents[1] if len(documents) > 1 else {}
    return spec, platform


def _tasks(spec):
    """Every task in the pipeline, nested DAGs included: name -> (task spec, its component)."""
    found, pending = {}, [spec.root]
    while pending:
        component = pending.pop()
        for name, task in component.dag.tasks.items():
            child = spec.components[task.component_ref.name]
            found[name] = (task, child)
            if child.WhichOneof("implementation") == "dag":
                pending.append(child)
    return found


def _check_references(spec):
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    for name, (task, component) in _tasks(spec).items():
        assert task.component_ref.name in spec.components
        if component.WhichOneof("implementation") == "executor_label":
            assert component.executor_label in executors, name
        siblings = set(_tasks(spec))
        assert set(task.dependent_tasks) <= siblings, name


def _resources(spec, step):
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    container = json_format.MessageToDict(executors[f"exec-{step}"].struct_value)["container"]
    return container.get("resources", {})


def test_kubeflow_compile_places_gpu_steps_on_the_gpu_pool():
    spec, platform = _documents(COMMITTED)
    _check_references(spec)
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for label, config in configs.items():
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig(),
                              ignore_unknown_fields=False)
    assert set(configs) == {f"exec-{s}" for s in GPU_STEPS}
    for step in GPU_STEPS:
        config = configs[f"exec-{step}"]
        assert config["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in config["tolerations"]
        resources = _resources(spec, step)
        accelerator = resources["accelerator"]
        assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("nvidia.com/gpu", "1")
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"]
    for step in CPU_STEPS:
        resources = _resources(spec, step)
        assert "accelerator" not in resources and resources["resourceMemoryLimit"]
    tasks = _tasks(spec)
    for step in GPU_STEPS:
        assert tasks[step][0].retry_policy.max_retry_count == 3
    assert not tasks["push"][0].HasField("retry_policy")


def test_vertex_compile_uses_vertex_accelerator_types(tmp_path):
    out, _ = _compile(tmp_path, "--platform", "vertex", "--gpu-type", "NVIDIA_L4", "--gpu-count", "2")
    spec, platform = _documents(out)
    _check_references(spec)
    assert platform == {}  # no Kubernetes settings for Vertex
    for step in GPU_STEPS:
        accelerator = _resources(spec, step)["accelerator"]
        assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("NVIDIA_L4", "2")
        assert "resourceCpuRequest" not in _resources(spec, step)
    for step in CPU_STEPS:
        assert "accelerator" not in _resources(spec, step)


def test_unknown_platform_is_refused(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        _compile(tmp_path, "--platform", "sagemaker")


def test_pipeline_names_the_image_the_build_config_produces():
    with open(os.path.join(REPO, "containers", "cloudbuild.yaml")) as f:
        substitutions = yaml.safe_load(f)["substitutions"]
    built = f"{substitutions['_IMAGE']}:{substitutions['_TAG']}"
    spec, _ = _documents(COMMITTED)
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {built} == {DEFAULT_IMAGE}


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(os.sys.executable), "hadolint")
    result = subprocess.run([hadolint, os.path.join(REPO, "containers", "trainer.Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_from_the_lock_and_bakes_the_weights():
    text = open(os.path.join(REPO, "containers", "trainer.Dockerfile")).read()
    assert "-c constraints.txt" in text and "weights='imagenet'" in text
    assert "\nUSER 1000" in text
    tf_pin = next(line for line in open(os.path.join(REPO, "constraints.txt"))
                  if line.startswith("tensorflow=="))
    assert f"tensorflow/tensorflow:{tf_pin.split('==')[1].strip()}-gpu" in text
