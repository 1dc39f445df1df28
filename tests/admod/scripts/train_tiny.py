"""Trains a tiny model through admod.training.train_phase; optionally dies mid-epoch.

    python train_tiny.py WORK_DIR EPOCHS [KILL_AT_EPOCH [CHECKPOINT_ROOT RUN_ID]]

Appends the epochs this process starts to WORK_DIR/started.txt.
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from admod import training

work_dir, epochs = sys.argv[1], int(sys.argv[2])
kill_at = int(sys.argv[3]) if len(sys.argv) > 3 and int(sys.argv[3]) > 0 else None
checkpoint_root, state_key = sys.argv[4:6] if len(sys.argv) > 5 else ("", "local")


class Witness(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        with open(os.path.join(os.path.dirname(work_dir), "started.txt"), "a") as f:
            f.write(f"{epoch + 1}\n")

    def on_train_batch_end(self, batch, logs=None):
        if kill_at is not None and self.epoch + 1 == kill_at and batch == 1:
            os._exit(137)  # as a preempted node would: no cleanup, no final save


rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
original = training.callbacks
training.callbacks = lambda *args: original(*args) + [Witness()]
options = training.TrainingOptions(epochs=epochs, learning_rate=0.01, early_stopping_patience=99,
                                   checkpoint_root=checkpoint_root, state_key=state_key)
training.train_phase(model, train, train, options, "head", work_dir, None)
