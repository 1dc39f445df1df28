"""The trainer image as a cluster runs it: any user id, the network off, the baked weights, a
failing step failing the run, and the whole pipeline in containers with the push landing.

Needs a Docker daemon and the image (`make test-container` builds it first). Without them these
tests fail; they are never skipped.
"""

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid

import pytest

from admod.defaults import CLASS_NAMES
from admod.defaults import LOCAL_IMAGE

IMAGE = os.environ.get("ADMOD_TEST_IMAGE", LOCAL_IMAGE)
ANY_USER = "12345:12345"  # an id the image does not know, as with OpenShift or runAsUser
ADMOD = os.path.join(os.path.dirname(sys.executable), "admod")


@pytest.fixture(scope="session")
def docker_client():
    import docker

    client = docker.from_env()
    client.ping()
    client.images.get(IMAGE)  # ImageNotFound: run `make image-local`
    return client


def _run_in_image(client, command: list, **run_args) -> tuple[int, str]:
    container = client.containers.run(IMAGE, command, detach=True, network_mode="none", **run_args)
    try:
        status = container.wait()["StatusCode"]
        return status, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def _writable_folder(path) -> str:
    """A folder any container user can write, as a volume with fsGroup would be."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return str(path)


def _tree_digest(folder: str) -> str:
    digest = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            digest.update(path.encode())
            digest.update(open(path, "rb").read())
    return digest.hexdigest()


WEIGHTS_CHECK = """
import getpass, json, os, tempfile
import h5py, numpy as np
from admod import model
built, source = model.build_model(64, "imagenet")
conv1 = built.get_layer(model.BASE_NAME).get_layer("conv1_conv").kernel.numpy()
with h5py.File(os.environ["ADMOD_IMAGENET_WEIGHTS"]) as f:
    group = f["conv1_conv"]
    name = group.attrs["weight_names"][0]
    baked = group[name.decode() if isinstance(name, bytes) else name][()]
with tempfile.NamedTemporaryFile(dir=os.environ["HOME"]) as home_file, tempfile.TemporaryFile():
    pass
json.dump({"uid": os.getuid(), "source": source, "equal": bool(np.array_equal(conv1, baked)),
           "weights": os.environ["ADMOD_IMAGENET_WEIGHTS"]}, open("/out/check.json", "w"))
"""


def test_any_user_id_finds_and_loads_the_baked_weights_offline(docker_client, tmp_path):
    out = _writable_folder(tmp_path / "out")
    status, logs = _run_in_image(docker_client, ["python", "-c", WEIGHTS_CHECK], user=ANY_USER,
                                 volumes={out: {"bind": "/out", "mode": "rw"}})
    assert status == 0, logs
    check = json.load(open(os.path.join(out, "check.json")))
    assert check["uid"] == 12345
    assert check["equal"], "the model did not load the baked weights file"
    assert check["weights"].startswith("/opt/admod/weights/")
    assert check["source"] in ("imagenet", "stand-in: random initialisation baked by a local "
                               "build (no ImageNet weights)")


def test_image_ships_kfp_and_installs_nothing(docker_client):
    status, logs = _run_in_image(docker_client, ["sh", "-c", "python -m kfp.dsl.executor_main "
                                                 "--help >/dev/null && pip --version"],
                                 user=ANY_USER)
    assert status == 0, logs
    assert "python 3.11" in logs  # the lock's Python (constraints.txt: '# python 3.11')


def _admod_run(tmp_path, data: str, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ADMOD, "run", "--runner", "docker", "--image", IMAGE, "--container-user", ANY_USER,
         "--data", data, "--pipeline-root", _writable_folder(tmp_path / "runs"),
         "--registry", _writable_folder(tmp_path / "registry"), *extra],
        capture_output=True, text=True, cwd=tmp_path)


def test_a_failing_step_fails_the_run(docker_client, tmp_path):
    empty = tmp_path / "no-class-folders"
    empty.mkdir()
    result = _admod_run(tmp_path, str(empty))
    assert result.returncode == 1, result.stdout[-3000:]
    assert "The local run failed" in result.stderr and "list-images" in result.stderr
    assert "allowed_ads" in result.stdout  # the step's own sentence, from inside the container
    assert os.listdir(tmp_path / "registry") == []
    assert docker_client.containers.list(all=True, filters={"ancestor": IMAGE}) == []


def test_whole_pipeline_in_containers_then_predict_on_the_host(docker_client, tmp_path):
    data = str(tmp_path / "demo")
    subprocess.run([ADMOD, "demo-data", data, "--count", "500", "--seed", "0"], check=True,
                   capture_output=True)
    before = _tree_digest(data)
    result = _admod_run(tmp_path, data, "-p", "min_accuracy=0.5", "-p", "min_auc=0.5")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "Decision: BLESSED" in result.stdout and "Pushed model:" in result.stdout
    assert "[weights: stand-in" in result.stdout or "[weights: imagenet]" in result.stdout
    assert _tree_digest(data) == before  # the data set is read-only to the pipeline

    folder = os.path.join(data, "not_allowed_ads")
    scored = subprocess.run([ADMOD, "predict", "--model", str(tmp_path / "registry"), folder],
                            capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(scored.stdout)))
    assert len(rows) == len(os.listdir(folder)) > 0
    assert all(0.0 <= float(row["probability"]) <= 1.0 for row in rows)
    assert {row["label"] for row in rows} <= set(CLASS_NAMES)


def test_a_code_only_change_reuses_the_dependency_layer(docker_client, tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    copy = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        if os.path.isfile(os.path.join(repo, name)):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes(open(os.path.join(repo, name), "rb").read())
    (copy / "containers" / "build-local.sh").chmod(0o755)
    with open(copy / "admod" / "__init__.py", "a") as f:
        # A change no earlier build has seen: BuildKit's cache outlives the removed image.
        f.write(f"\n# a code-only change {uuid.uuid4()}\n")
    tag = "admod/trainer:test-code-change"
    build = subprocess.run([str(copy / "containers" / "build-local.sh")], capture_output=True,
                           text=True, env={**os.environ, "IMAGE": tag})
    try:
        assert build.returncode == 0, build.stderr[-3000:]
        log = build.stdout + build.stderr
        steps = {line.split("] ", 1)[1].strip(): line.split()[0]
                 for line in log.splitlines() if line.startswith("#") and "] RUN " in line}
        dependency_step = next(s for s in steps if "install_dependencies.py" in s)
        project_step = next(s for s in steps if "pip install" in s and "./src" in s)
        step_id = {s: number for s, number in steps.items()}
        assert f"{step_id[dependency_step]} CACHED" in log, log[-3000:]
        assert f"{step_id[project_step]} CACHED" not in log
    finally:
        docker_client.images.remove(tag, force=True)
