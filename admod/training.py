"""The two training phases: the head on a frozen base, then fine-tuning.

Both use Keras's own callbacks: EarlyStopping (restores the best weights), ModelCheckpoint on the
best val_loss, ReduceLROnPlateau, CSVLogger (the epoch history, appended across restarts),
TensorBoard, and BackupAndRestore, which saves the full training state every epoch so that a
step killed mid-phase resumes from its last completed epoch.
"""

import hashlib
import logging
import os
import shutil

import keras
import pandas as pd

from admod import options as options_lib, storage
from admod.options import TrainingOptions
from admod.errors import AdmodError

log = logging.getLogger(__name__)
HISTORY_FILE = "history.csv"
STATE_DIR = "backup"  # BackupAndRestore's folder
BEST_MODEL_FILE = "best.keras"
EPOCH_LOG = "epoch"  # the word EpochLog's lines start with


def class_weights(counts: list[int], mode: str = TrainingOptions.class_weighting,
                  minority_share: float = TrainingOptions.class_weight_minority_share
                  ) -> dict | None:
    """Weights inversely proportional to class frequency ('balanced'; 'auto' only when the
    minority class's share is under `minority_share`), or None."""
    total = sum(counts)
    if mode == "none" or (mode == "auto" and min(counts) / total >= minority_share):
        return None
    if mode not in options_lib.CLASS_WEIGHTINGS:
        raise AdmodError(f"class_weighting='{mode}' is unknown: use auto, balanced or none.")
    return {label: total / (len(counts) * n) for label, n in enumerate(counts)}


def durable_state_dir(options: TrainingOptions, phase: str) -> str | None:
    """Where this run's phase mirrors its training state (None without a checkpoint_root):
    keyed on `options.state_key`, never on the display name, which runs share (recurring runs,
    `admod submit`'s default)."""
    if not options.checkpoint_root:
        return None
    key = hashlib.sha256(options.state_key.encode()).hexdigest()[:20]
    return storage.join(options.checkpoint_root, key, phase)


def compile_model(model: keras.Model, learning_rate: float, jit_compile: bool = False) -> None:
    """Adam + binary cross-entropy. Under mixed_float16, Keras wraps Adam in loss scaling."""
    model.compile(
        jit_compile=jit_compile,
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"),
                 keras.metrics.Precision(name="precision"),
                 keras.metrics.Recall(name="recall"),
                 keras.metrics.AUC(name="auc")],
    )
    # Adam's slots made now, eagerly, as BackupAndRestore makes them before a restore: left to
    # fit, they are made inside the train step's first trace, which that makes about twice as
    # slow (ResNet50 fully trainable on a CPU: 32 s to 18 s; the trace is CPU work on a GPU
    # node too). Under a strategy's scope they are made as it places variables.
    model.optimizer.build(model.trainable_variables)


class MirrorTrainingState(keras.callbacks.Callback):
    """Copies the training state (BackupAndRestore's backup, the history) to durable storage
    after every epoch, so a retry on a fresh node resumes. On Kubeflow a step's output folder
    lives on the pod until the step ends; a preempted pod loses it, this copy survives."""

    def __init__(self, work_dir: str, durable: str):
        super().__init__()
        self.work_dir, self.durable = work_dir, durable

    def restore(self) -> None:
        if not storage.is_dir(self.durable):
            return
        if storage.is_remote(self.durable):
            storage.download_dir(self.durable, self.work_dir)
        else:
            shutil.copytree(self.durable, self.work_dir, dirs_exist_ok=True)
        log.info("restored the training state from %s", self.durable)

    def on_epoch_end(self, epoch, logs=None):
        for name in (STATE_DIR, HISTORY_FILE):
            path = os.path.join(self.work_dir, name)
            if os.path.isdir(path):
                storage.upload_dir(path, storage.join(self.durable, name))
            elif os.path.exists(path):
                storage.write_bytes(storage.join(self.durable, name), open(path, "rb").read())


def tensorboard_logdir(default: str) -> str:
    """Where TensorBoard logs go: AIP_TENSORBOARD_LOG_DIR when Vertex AI sets it (its
    TensorBoard uploads from there), else `default` (the model's tensorboard/ folder)."""
    return os.environ.get("AIP_TENSORBOARD_LOG_DIR") or default


def callbacks(options: TrainingOptions, phase: str, work_dir: str,
              durable: str | None = None, baseline: float | None = None) -> list:
    """`baseline`: the val_loss to beat (the head's best, for fine-tuning): no checkpoint is
    saved, and patience is not reset, until an epoch beats it."""
    # CSVLogger before BackupAndRestore: a kill between the two repeats an epoch's row, which
    # read_history drops, rather than losing it. The mirror comes after both.
    mirror = [MirrorTrainingState(work_dir, durable)] if durable else []
    return [
        LearningRateLogged(),  # first: the history's learning_rate is the one the epoch ran with
        keras.callbacks.CSVLogger(os.path.join(work_dir, HISTORY_FILE), append=True),
        keras.callbacks.BackupAndRestore(os.path.join(work_dir, STATE_DIR)),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.early_stopping_patience,
                                      restore_best_weights=True, baseline=baseline, verbose=1),
        keras.callbacks.ModelCheckpoint(os.path.join(work_dir, BEST_MODEL_FILE),
                                        monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=baseline),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=options.reduce_lr_factor,
                                          patience=options.reduce_lr_patience,
                                          min_lr=options.min_learning_rate, verbose=1),
        keras.callbacks.TensorBoard(
            storage.join(tensorboard_logdir(os.path.join(work_dir, "tensorboard")), phase)),
    ] + mirror


class LearningRateLogged(keras.callbacks.Callback):
    """The learning rate each epoch ran with, in its logs: the history and the curves show it
    (ReduceLROnPlateau changes it at the end of an epoch, after this)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch, the same on a cluster and in a local run (which echoes it):
    Keras's own epoch line is for people, this one is admod's."""

    def __init__(self, phase: str, last_epoch: int):
        super().__init__()
        self.phase, self.last_epoch = phase, last_epoch

    def on_epoch_end(self, epoch, logs=None):
        figures = ", ".join(f"{name} {logs[name]:.4f}" for name in ("loss", "val_loss", "val_auc")
                            if name in (logs or {}))
        log.info("%s %d/%d: %s", EPOCH_LOG, epoch + 1, self.last_epoch, figures)


def train_phase(model, train_ds, val_ds, options: TrainingOptions, phase: str, work_dir: str,
                class_weight: dict | None, initial_epoch: int = 0,
                jit_compile: bool = False, baseline: float | None = None) -> pd.DataFrame:
    """Compiles `model` and fits it for one phase ("head" or "fine_tune"), its epochs numbered
    on from `initial_epoch`, `baseline` the val_loss to beat (`callbacks`); returns this
    phase's epoch history.

    With a checkpoint_root in `options`, the training state is mirrored there every epoch and
    restored from there first."""
    os.makedirs(work_dir, exist_ok=True)
    durable = durable_state_dir(options, phase)
    if durable:
        MirrorTrainingState(work_dir, durable).restore()
    compile_model(model, options.learning_rate, jit_compile)
    log.info("%s phase: epochs %d-%d, learning rate %g, class weights %s", phase,
             initial_epoch + 1, initial_epoch + options.epochs, options.learning_rate,
             class_weight)
    model.fit(train_ds, validation_data=val_ds, initial_epoch=initial_epoch,
              epochs=initial_epoch + options.epochs, class_weight=class_weight,
              callbacks=callbacks(options, phase, work_dir, durable, baseline)
              + [EpochLog(phase, initial_epoch + options.epochs)], verbose=2)
    if durable:  # the phase is complete: nothing left to resume
        storage.remove_dir(durable)
    return read_history(work_dir, phase)


def read_history(work_dir: str, phase: str) -> pd.DataFrame:
    history = pd.read_csv(os.path.join(work_dir, HISTORY_FILE))
    history = history.drop_duplicates("epoch", keep="last").reset_index(drop=True)
    history["epoch"] = history["epoch"] + 1  # 1-based, as people count epochs
    history["phase"] = phase
    return history


def summarise(history: pd.DataFrame) -> dict:
    """Epochs run and the best epoch's validation figures."""
    if history["val_loss"].isna().all():
        phase = history["phase"].iloc[0] if "phase" in history else "training"
        raise AdmodError(f"The {phase} phase diverged: the validation loss is NaN in every "
                         "epoch, so there is no model to keep. Lower the learning rate or set "
                         "mixed_precision=false, and check the weights.")
    best = history.loc[history["val_loss"].idxmin()]
    return {"epochs_run": int(len(history)), "last_epoch": int(history["epoch"].max()),
            "best_epoch": int(best["epoch"]), "best_val_loss": float(best["val_loss"]),
            "best_val_accuracy": float(best["val_accuracy"]),
            "best_val_auc": float(best["val_auc"])}
