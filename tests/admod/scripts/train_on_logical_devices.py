"""One training step as its component runs it, on logical CPU devices standing in for GPUs, so
that the code paths otherwise run only on a GPU node run here: MirroredStrategy over two
devices, the global batch, class weights, mixed precision and XLA. Like a pipeline step, each
call is its own process (two MirroredStrategy instances in one process share collective keys).
The base is the small stand-in of tests/support/small_resnet.py (ResNet50's layer names and
kinds, a fraction of its size): these promises are about the replicas, the precision policy and
the resumption, not about the architecture, which tests/admod/test_model_training.py pins.

    python -m tests.admod.scripts.train_on_logical_devices WORK_DIR STEP DEVICES MIXED XLA
                                                             EPOCHS [KILL_AT_EPOCH]

STEP is train-head or fine-tune (on WORK_DIR/split, written by the test); DEVICES 1 or 2; MIXED
and XLA 0 or 1; EPOCHS the phase's epochs. KILL_AT_EPOCH ends the process at the start of that
epoch, as a preempted node would; the next call resumes from the durable copy. Each process
appends the epochs it starts to WORK_DIR/started.txt; fine-tune writes facts about the trained
model to WORK_DIR/model.json.

XLA over two logical CPU devices is not run: XLA's CPU backend compiles a replica's step on
CPU:0 and cannot read CPU:1's variables (TensorFlow's XLA known issues, "tf.Variable on a
different device"), which says nothing about GPUs. Nor is mixed precision: random weights
overflow float16 after enough residual additions (ImageNet's BatchNorm statistics keep ResNet50
in range), and over two replicas when they do varies from run to run.
"""

import json
import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402

from admod import accelerators, steps, training  # noqa: E402
from admod import model as model_lib  # noqa: E402
from admod.options import AugmentOptions  # noqa: E402
from tests.support import small_resnet  # noqa: E402

work, step, devices = sys.argv[1], sys.argv[2], int(sys.argv[3])
mixed, xla = sys.argv[4] == "1", sys.argv[5] == "1"
epochs = int(sys.argv[6])
kill_at = int(sys.argv[7]) if len(sys.argv) > 7 else 0
accelerators.accelerator_devices = lambda: [f"/cpu:{i}" for i in range(devices)]
model_lib._resnet50 = small_resnet.small_resnet


class Preemption(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        with open(os.path.join(work, "started.txt"), "a") as f:
            f.write(f"{step} {epoch + 1}\n")
        if epoch + 1 == kill_at:
            os._exit(137)  # no cleanup, no final save


original = training.callbacks
training.callbacks = lambda *args: original(*args) + [Preemption()]

data = {name: os.path.join(work, "split", name) for name in ("train", "validation")}
step_dir = os.path.join(work, step)
options = training.TrainingOptions(
    epochs=epochs, batch_size=4, class_weighting="balanced", early_stopping_patience=99,
    mixed_precision=mixed, xla=xla, augmentation=AugmentOptions(),
    checkpoint_root=os.path.join(work, "durable"), state_key=step_dir)
if step == "train-head":
    steps.train_head_step(train_dir=data["train"], val_dir=data["validation"],
                          model_dir=step_dir, report_path=step_dir + ".html", image_size=32,
                          weights="none", options=options)
else:
    policy = keras.mixed_precision.global_policy().name
    steps.fine_tune_step(head_dir=os.path.join(work, "train-head"), train_dir=data["train"],
                         val_dir=data["validation"], model_dir=step_dir,
                         report_path=step_dir + ".html", unfreeze="conv5_block3",
                         options=options)
    model = model_lib.load(os.path.join(step_dir, "model.keras"))
    facts = {"policy_while_training": keras.mixed_precision.global_policy().name,
             "output_dtype": model(tf.zeros((2, 32, 32, 3))).dtype.name,
             "output_layer_policy": model.get_layer("not_allowed").dtype_policy.name}
    with open(os.path.join(work, "model.json"), "w") as f:
        json.dump(facts, f)
