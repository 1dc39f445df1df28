"""Using the GPUs that are there: mixed precision, XLA and MirroredStrategy.

Each is switched on only when a GPU is present (and its parameter allows it); on CPU the
default strategy and float32 are used, so a local run behaves as before.
"""

import dataclasses
import logging

import keras
import tensorflow as tf

from admod.errors import AdmodError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Setup:
    strategy: tf.distribute.Strategy
    gpus: int
    mixed_precision: bool
    xla: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def facts(self) -> dict:
        return {"gpus": self.gpus, "replicas": self.replicas,
                "mixed_precision": self.mixed_precision, "xla": self.xla}


def accelerator_devices() -> list[str]:
    """The GPUs TensorFlow sees, as device names ('/gpu:0', ...). The tests replace this with
    two logical CPU devices, so every GPU-only code path (MirroredStrategy, the global batch,
    mixed precision, XLA) runs on a CPU machine."""
    return [f"/gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]


def check_gpu(required: bool, devices: list[str]) -> int:
    """The number of accelerators; none when `required` fails the step at once rather
    than training on CPU for hours."""
    gpus = len(devices)
    if required and not gpus:
        raise AdmodError(
            "This step needs a GPU (require_gpu=true) but TensorFlow sees none: check that the "
            "node has one (nvidia.com/gpu, the GPU node pool or Vertex accelerator), that the "
            "image is the GPU variant (VARIANT=gpu) and that the NVIDIA driver is installed; "
            "or set require_gpu=false to run this step on CPU on purpose.")
    return gpus


def configure(mixed_precision: bool, xla: bool, require_gpu: bool = False) -> Setup:
    devices = accelerator_devices()
    gpus = check_gpu(require_gpu, devices)
    use_mixed = bool(gpus) and mixed_precision
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    strategy = (tf.distribute.MirroredStrategy(devices) if gpus > 1
                else tf.distribute.get_strategy())
    setup = Setup(strategy, gpus, use_mixed, bool(gpus) and xla)
    log.info("accelerators: %s", setup.facts())
    return setup
