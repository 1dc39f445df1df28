"""Both platforms' compiles are valid for their engines, with GPUs only where they belong."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from admod.components import DEFAULT_IMAGE
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
    for config in configs.values():
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig(),
                              ignore_unknown_fields=False)
    for step in GPU_STEPS:
        config = configs[f"exec-{step}"]
        assert config["nodeSelector"]["labels"] == {
            "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists",
                "effect": "NoSchedule"} in config["tolerations"]
        resources = _resources(spec, step)
        accelerator = resources["accelerator"]
        assert accelerator["resourceType"] == "nvidia.com/gpu"
        assert accelerator["resourceCount"] == "1"
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"]
    for step in CPU_STEPS:
        resources = _resources(spec, step)
        assert "accelerator" not in resources and resources["resourceMemoryLimit"]
    tasks = _tasks(spec)
    for step in GPU_STEPS:
        assert tasks[step][0].retry_policy.max_retry_count == 3
    assert not tasks["push"][0].HasField("retry_policy")


def test_kubeflow_steps_only_gpu_ones_on_the_gpu_pool():
    _, platform = _documents(COMMITTED)
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    on_gpus = {name for name, config in configs.items() if "nodeSelector" in config}
    assert on_gpus == {f"exec-{s}" for s in GPU_STEPS}


def _store_secrets(path):
    """executor -> its secretAsEnv entries, from a compiled pipeline's Kubernetes settings."""
    _, platform = _documents(path)
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return {name: config.get("secretAsEnv", []) for name, config in configs.items()}


def test_every_kubeflow_step_reads_the_store_secret_as_boto3_variables():
    """Every step reads or writes the store (data, parts, shards, registry, durable state):
    each gets the stock install's MinIO secret as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
    optional (a gs:// namespace without it still runs); no credential is in the spec."""
    spec, _ = _documents(COMMITTED)
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    secrets = _store_secrets(COMMITTED)
    assert set(secrets) == set(executors)
    for name, entries in secrets.items():
        assert entries == [{"secretName": "mlpipeline-minio-artifact",
                            "secretNameParameter": {"runtimeValue": {
                                "constant": "mlpipeline-minio-artifact"}},
                            "keyToEnv": [{"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
                                         {"secretKey": "secretkey",
                                          "envVar": "AWS_SECRET_ACCESS_KEY"}],
                            "optional": True}], name
    text = open(COMMITTED).read()
    assert "minio123" not in text and "AWS_ENDPOINT_URL" not in text


def _compiled(tmp_path, name: str, **target) -> str:
    """A Kubeflow compile in this process (faster than `_compile`'s fresh interpreter)."""
    from admod.pipeline.compiled import write_pipeline

    out = str(tmp_path / name)
    write_pipeline(out, **target)
    return out


def test_store_secret_and_endpoint_are_chosen_at_compile(tmp_path):
    out = _compiled(tmp_path, "endpoint.yaml", store_secret="team-s3",
                    store_endpoint="https://s3.internal:9000")
    for entries in _store_secrets(out).values():
        assert [e["secretName"] for e in entries] == ["team-s3"]
    spec, _ = _documents(out)
    for executor in json_format.MessageToDict(spec.deployment_spec)["executors"].values():
        assert {"name": "AWS_ENDPOINT_URL", "value": "https://s3.internal:9000"} in (
            executor["container"]["env"])
    out = _compiled(tmp_path, "none.yaml", store_secret="")
    _, platform = _documents(out)
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert not any("secretAsEnv" in config for config in configs.values())


def test_an_older_backend_gets_no_optional_secret_it_would_refuse(tmp_path):
    """SecretAsEnv.optional is not in kubernetes_executor_config.proto at tags 2.5.0 and 2.14.0
    (kubeflow/pipelines); their drivers drop unknown fields (backend/src/common/util/json.go
    UnmarshalString: AllowUnknownFields at 2.5.0, DiscardUnknown at 2.14.0), so the secret would
    be required and stop every pod of a namespace without it. So none by default, a required
    one when named."""
    out = _compiled(tmp_path, "old.yaml", kfp_version="2.14.0")
    assert not any(_store_secrets(out).values())
    out = _compiled(tmp_path, "named.yaml", kfp_version="2.14.0", store_secret="minio-creds")
    for entries in _store_secrets(out).values():
        assert [e["secretName"] for e in entries] == ["minio-creds"]
        assert not entries[0].get("optional")


def test_vertex_compile_uses_vertex_accelerator_types(tmp_path):
    out, _ = _compile(tmp_path, "--platform", "vertex", "--gpu-type", "NVIDIA_L4",
                      "--gpu-count", "2")
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
    hadolint = (shutil.which("hadolint")
                or os.path.join(os.path.dirname(os.sys.executable), "hadolint"))
    result = subprocess.run([hadolint, os.path.join(REPO, "containers", "trainer.Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


DOCKERFILE = os.path.join(REPO, "containers", "trainer.Dockerfile")
LOCK = os.path.join(REPO, "constraints.txt")


def _container_script(name):
    """One of containers/*.py (build-time scripts, not part of the package), as a module."""
    import importlib.util

    path = os.path.join(REPO, "containers", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_step_installs_anything_at_run_time(tmp_path):
    vertex, _ = _compile(tmp_path, "--platform", "vertex")
    for path in (COMMITTED, vertex):
        text = open(path).read()
        assert "pip install" not in text and "pip3 install" not in text, path
        spec, _ = _documents(path)
        executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
        for name, executor in executors.items():
            command = " ".join(executor["container"]["command"] + executor["container"]["args"])
            assert "python3 -m kfp.dsl.executor_main" in command, name


def _base_image():
    return next(line.split("=", 1)[1].strip() for line in open(DOCKERFILE)
                if line.startswith("ARG BASE_IMAGE="))


def test_image_python_is_the_locks_python_and_the_base_is_named_by_digest():
    base = _base_image()
    assert re.fullmatch(r"python:3\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base)
    assert "FROM ${BASE_IMAGE}" in open(DOCKERFILE).read()
    lock_python = next(line.split()[2] for line in open(LOCK) if line.startswith("# python "))
    assert base.startswith(f"python:{lock_python}-slim")
    script = _container_script("install_dependencies")
    for variant in ("cpu", "gpu"):
        assert script.lock_python(os.path.join(REPO, script.image_lock(variant))) == tuple(
            int(part) for part in lock_python.split("."))


def test_the_image_locks_pin_every_file_by_hash_at_the_constraints_versions():
    script = _container_script("install_dependencies")
    pins = dict(line.strip().split("==") for line in open(LOCK) if "==" in line)
    pins = {name.lower(): version for name, version in pins.items()}
    for variant in ("cpu", "gpu"):
        text = open(os.path.join(REPO, script.image_lock(variant))).read()
        entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$",
                             text, re.MULTILINE)
        assert len(entries) == text.count("==") > 50
        assert all(pins[name.lower()] == version for name, version, _ in entries)
        names = {name.lower() for name, _, _ in entries}
        wanted = {re.split(r"[\[<>=;]", r)[0].strip().lower() for r in script.requirements(variant)}
        assert wanted <= names, wanted - names


def _wheel(folder, payload: bytes) -> str:
    """A one-module wheel, admodprobe 1.0, whose module holds `payload`."""
    import zipfile

    path = os.path.join(folder, "admodprobe-1.0-py3-none-any.whl")
    files = {"admodprobe.py": payload,
             "admodprobe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: admodprobe\n"
                                                   b"Version: 1.0\n",
             "admodprobe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
                                                b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + "admodprobe-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("admodprobe-1.0.dist-info/RECORD", record)
    return path


def test_the_image_install_refuses_a_file_whose_hash_is_not_the_locks(tmp_path):
    """install_dependencies.py installs in pip's hash-checking mode: the reviewed file installs,
    a tampered file under the same name and version is refused."""
    import hashlib

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    reviewed = _wheel(str(wheels), b"VALUE = 'reviewed'\n")
    digest = hashlib.sha256(open(reviewed, "rb").read()).hexdigest()
    (tmp_path / "containers").mkdir()
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    (tmp_path / "containers" / "requirements-cpu.lock").write_text(
        f"# python {python}\nadmodprobe==1.0 \\\n    --hash=sha256:{digest}\n")
    script = os.path.join(REPO, "containers", "install_dependencies.py")

    def install(target):
        env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
               "PIP_TARGET": str(tmp_path / target)}
        return subprocess.run([sys.executable, script, "cpu"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    installed = install("reviewed")
    assert installed.returncode == 0, installed.stderr
    assert "reviewed" in (tmp_path / "reviewed" / "admodprobe.py").read_text()
    _wheel(str(wheels), b"VALUE = 'tampered'\n")  # the same name and version, other bytes
    refused = install("tampered")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr and digest in refused.stderr
    assert not (tmp_path / "tampered" / "admodprobe.py").exists()


def test_dependencies_are_installed_before_the_source_is_copied():
    lines = [line.strip() for line in open(DOCKERFILE)]
    install = next(i for i, line in enumerate(lines)
                   if "install_dependencies.py \"$VARIANT\"" in line)
    first_source = next(i for i, line in enumerate(lines) if line.startswith("COPY admod"))
    assert install < first_source
    copied_before = " ".join(line for line in lines[:install] if line.startswith("COPY"))
    assert "admod" not in copied_before.replace("containers/", "")
    assert "\nUSER 1000" in open(DOCKERFILE).read()


def test_gpu_variant_pins_every_cuda_wheel_tensorflow_asks_for():
    from importlib import metadata

    pinned = {line.split("==")[0].lower() for line in open(LOCK) if "==" in line}
    cuda = [r.split(";")[0].split("<")[0].split(">")[0].strip().lower()
            for r in metadata.requires("tensorflow") if 'extra == "and-cuda"' in r]
    assert cuda and set(cuda) <= pinned
    script = _container_script("install_dependencies")
    assert "tensorflow[and-cuda]" in script.requirements("gpu")
    cpu = script.requirements("cpu")
    assert "tensorflow" in cpu and not any("and-cuda" in r for r in cpu)


def test_ca_bundle_and_pip_config_are_build_secrets_never_files_of_the_image():
    text = open(DOCKERFILE).read()
    assert "--mount=type=secret,id=pip_cert" in text and "--mount=type=secret,id=pip_conf" in text
    assert ".crt" not in text and "pip.conf" not in text and "PIP_CERT" not in text
    build = open(os.path.join(REPO, "containers", "build-local.sh")).read()
    assert "--secret \"id=pip_cert,src=$CA_BUNDLE\"" in build


def test_cloud_build_bakes_the_real_weights_and_the_gpu_wheels():
    text = open(DOCKERFILE).read()
    assert "ARG VARIANT=gpu" in text and "ARG IMAGENET_WEIGHTS=download" in text
    with open(os.path.join(REPO, "containers", "cloudbuild.yaml")) as f:
        args = yaml.safe_load(f)["steps"][0]["args"]
    assert not any("VARIANT=" in a or "IMAGENET_WEIGHTS=" in a for a in args)  # the defaults
