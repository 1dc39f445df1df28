import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from admod import training

pytestmark = pytest.mark.first(seconds=45)  # the order: tests/conftest.py

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "train_tiny.py")


def _train(work_dir, epochs, kill_at=0, checkpoints: training.TrainingOptions | None = None):
    durable = [checkpoints.checkpoint_root, checkpoints.state_key] if checkpoints else []
    args = [sys.executable, SCRIPT, str(work_dir), str(epochs), str(kill_at)] + durable
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_a_killed_phase_resumes_from_its_last_completed_epoch(tmp_path):
    work = tmp_path / "work"
    killed = _train(work, 5, kill_at=3)
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert pd.read_csv(work / "history.csv")["epoch"].tolist() == [0, 1]
    resumed = _train(work, 5)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    started = (tmp_path / "started.txt").read_text().split()
    assert started == ["1", "2", "3", "3", "4", "5"]  # epoch 3 again, not epoch 1
    history = training.read_history(str(work), "head")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert not os.path.exists(work / "backup")  # removed once the phase completed


def test_a_retry_on_a_fresh_node_resumes_from_the_durable_copy(tmp_path, bucket):
    import shutil

    checkpoints = training.TrainingOptions(checkpoint_root=f"gs://{bucket.name}/checkpoints",
                                           state_key="gs://root/run-1/train-head/model")
    work = tmp_path / "work"
    assert _train(work, 4, kill_at=3, checkpoints=checkpoints).returncode == 137
    shutil.rmtree(work)  # the preempted pod's disk is gone
    resumed = _train(work, 4, checkpoints=checkpoints)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "started.txt").read_text().split() == ["1", "2", "3", "3", "4"]
    assert training.read_history(str(work), "head")["epoch"].tolist() == [1, 2, 3, 4]
    assert list(bucket.list_blobs(prefix="checkpoints/")) == []  # removed once complete


def test_a_retried_run_resumes_from_its_state_on_s3(tmp_path, s3_bucket):
    """A run retried after an eviction (the same output URI, so the same key) on a fresh node
    resumes from the state mirrored to an s3:// checkpoint_root (a stock Kubeflow's MinIO)."""
    import shutil

    from admod import storage

    checkpoints = training.TrainingOptions(
        checkpoint_root=f"minio://{s3_bucket}/checkpoints",
        state_key="minio://mlpipeline/v2/artifacts/admod/run-1/train-head/model")
    work = tmp_path / "work"
    assert _train(work, 4, kill_at=3, checkpoints=checkpoints).returncode == 137
    assert storage.is_dir(training.durable_state_dir(checkpoints, "head"))
    shutil.rmtree(work)  # evicted: the pod's disk is gone
    resumed = _train(work, 4, checkpoints=checkpoints)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "started.txt").read_text().split() == ["1", "2", "3", "3", "4"]
    assert not storage.is_dir(f"minio://{s3_bucket}/checkpoints")  # removed once complete


def test_runs_sharing_a_display_name_never_share_training_state(tmp_path):
    """Recurring runs and `admod submit` reuse display names: a new run must start from
    epoch 1 even where an earlier run of the same name left its state behind."""
    root = str(tmp_path / "checkpoints")
    crashed = training.TrainingOptions(checkpoint_root=root,
                                       state_key="gs://root/3f2a-run-one/train-head/model")
    next_run = training.TrainingOptions(checkpoint_root=root,
                                        state_key="gs://root/9c1b-run-two/train-head/model")
    assert _train(tmp_path / "pod-1", 4, kill_at=3, checkpoints=crashed).returncode == 137
    (tmp_path / "started.txt").unlink()
    assert _train(tmp_path / "pod-2", 4, checkpoints=next_run).returncode == 0
    assert (tmp_path / "started.txt").read_text().split() == ["1", "2", "3", "4"]
    assert not os.path.exists(training.durable_state_dir(next_run, "head"))  # removed once complete
    assert os.path.isdir(training.durable_state_dir(crashed, "head"))  # the other run's: kept


def test_best_weights_are_restored(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    flipped = tf.data.Dataset.from_tensor_slices((x, 1 - y)).batch(32)  # learning hurts val
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    options = training.TrainingOptions(epochs=6, learning_rate=0.1, early_stopping_patience=10)
    history = training.train_phase(model, train, flipped, options, "head", str(tmp_path), None)
    best = history.loc[history["val_loss"].idxmin(), "epoch"]
    assert best < history["epoch"].max()  # the last epoch was not the best
    restored = keras.models.load_model(tmp_path / training.BEST_MODEL_FILE)
    for a, b in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert training.summarise(history)["best_epoch"] == best


def test_tensorboard_logs_go_where_vertex_collects_them_when_it_says(tmp_path, monkeypatch):
    def tensorboard_dir() -> str:
        (board,) = [c for c in training.callbacks(training.TrainingOptions(), "head",
                                                  str(tmp_path / "model"))
                    if isinstance(c, keras.callbacks.TensorBoard)]
        return board.log_dir

    assert tensorboard_dir() == str(tmp_path / "model" / "tensorboard" / "head")
    monkeypatch.setenv("AIP_TENSORBOARD_LOG_DIR", "gs://bucket/tb/run-7")
    assert tensorboard_dir() == "gs://bucket/tb/run-7/head"
    assert training.tensorboard_logdir("gs://x/model/tensorboard") == "gs://bucket/tb/run-7"
