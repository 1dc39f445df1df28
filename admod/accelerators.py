"""Using the GPUs that are there: mixed precision, XLA and MirroredStrategy.

Each is switched on only when a GPU is present (and its parameter allows it); on CPU the
default strategy and float32 are used, so a local run behaves as before.
"""

import dataclasses
import logging

import keras
import tensorflow as tf

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


def configure(mixed_precision: bool, xla: bool) -> Setup:
    gpus = len(tf.config.list_physical_devices("GPU"))
    use_mixed = bool(gpus) and mixed_precision
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
    setup = Setup(strategy, gpus, use_mixed, bool(gpus) and xla)
    log.info("accelerators: %s", setup.facts())
    return setup
