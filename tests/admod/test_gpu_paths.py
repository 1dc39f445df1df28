"""The code that runs only on GPU nodes, run here: train-head and fine-tune as their components
run them, each in its own process (as a pod), on logical CPU devices standing in for GPUs
(tests/admod/scripts/train_on_logical_devices.py, with a small stand-in for ResNet50):
MirroredStrategy over two replicas with a preemption and resume, and mixed precision with
XLA."""

import json
import os
import subprocess
import sys

import pytest

from admod import split
from admod import split_steps
from tests.support import splitting

pytestmark = pytest.mark.first(seconds=90)  # the order: tests/conftest.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _split(demo_root, work):
    # 41 training images: a batch of one is left over after 5 global batches of 8
    out = {name: str(work / "split" / name) for name in split.SPLITS}
    split_steps.split_step(data_root=demo_root, out_dirs=out, manifest_path=str(work / "m.csv"),
                     report_path=str(work / "r.md"),
                     **splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=5,
                                              shard_size=8))
    return out


def _step(work, step, devices, mixed, xla, epochs=2, kill_at=0):
    args = [sys.executable, "-m", "tests.admod.scripts.train_on_logical_devices", str(work), step,
            str(devices), str(int(mixed)), str(int(xla)), str(epochs)] + (
                [str(kill_at)] if kill_at else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=REPO)


def _info(work, step):
    with open(work / step / "model_info.json") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def mirrored(demo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("mirrored")
    _split(demo_root, work)
    killed = _step(work, "train-head", 2, False, False, kill_at=2)
    assert killed.returncode == 137, killed.stderr[-3000:]
    for step, epochs in (("train-head", 2), ("fine-tune", 1)):
        done = _step(work, step, 2, False, False, epochs=epochs)
        assert done.returncode == 0, done.stderr[-3000:]
    return work


def test_two_replicas_train_both_phases_with_the_global_batch_and_class_weights(mirrored):
    for step in ("train-head", "fine-tune"):
        info = _info(mirrored, step)
        assert (info["gpus"], info["replicas"]) == (2, 2), step
        assert info["global_batch_size"] == 2 * 4, step
        assert info["last_short_batch_dropped"] is True, step  # 41 = 5 x 8 + 1
        assert set(info["class_weights"]) == {"allowed_ads", "not_allowed_ads"}, step
    assert _info(mirrored, "fine-tune")["last_epoch"] == 3  # numbering went on from 2


def test_a_preempted_replicated_phase_resumes_where_it_stopped(mirrored):
    started = (mirrored / "started.txt").read_text().splitlines()
    assert started[:3] == ["train-head 1", "train-head 2", "train-head 2"]
    assert started[3:] == ["fine-tune 3"]
    # removed once each phase completed
    assert [f for _, _, files in os.walk(mirrored / "durable") for f in files] == []


def test_mixed_precision_in_both_phases_and_xla_in_fine_tune(demo_root, tmp_path):
    """XLA on one phase and one epoch a phase: the flag reaches both phases by the same path
    (TrainingOptions.xla -> compile_model), and XLA in float16 runs slowly on a CPU."""
    _split(demo_root, tmp_path)
    for step, xla in (("train-head", False), ("fine-tune", True)):
        done = _step(tmp_path, step, 1, True, xla, epochs=1)
        assert done.returncode == 0, done.stderr[-3000:]
        info = _info(tmp_path, step)
        assert (info["mixed_precision"], info["xla"], info["replicas"]) == (True, xla, 1)
    model = json.loads((tmp_path / "model.json").read_text())
    assert model == {"policy_while_training": "mixed_float16", "output_dtype": "float32",
                     "output_layer_policy": "float32"}
