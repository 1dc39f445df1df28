"""Benchmark: training images per second fed by the real input pipeline, against the same
model fed from one in-memory batch (the compute ceiling), per phase.

    .venv/bin/python bench/train_step.py [--size 224] [--batch-size 32] [--steps 30]
    .venv/bin/python bench/train_step.py --matrix      # on a GPU: also mixed precision x XLA
    KERAS_BACKEND=jax python bench/train_step.py --ceiling-only --matrix   # no TensorFlow

The ratio pipeline/ceiling is the share of step time the accelerator is fed; 1 - ratio is the
input pipeline's share of step time. --matrix runs every phase with mixed precision on/off and
XLA on/off (mixed precision and XLA are only switched on when a GPU is present); it is sized to
finish in under 5 minutes on one GPU (give --steps 200 there: 30 steps take under a second).
--ceiling-only measures the compute ceiling alone and needs no TensorFlow, so it runs under
Keras's JAX backend too (where every step is XLA-compiled).
"""

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from admod import training  # noqa: E402
from admod import model as model_lib  # noqa: E402


def _images_per_second(model, data, steps: int, batch: int) -> float:
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # warm up (tracing, XLA compile)
    started = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - started)


def _model(phase: str, size: int, mixed: bool, xla: bool) -> keras.Model:
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    model, _ = model_lib.build_model(size, weights="none")
    if phase == "fine_tune":
        model_lib.unfreeze(model, "all")
    training.compile_model(model, 1e-4, jit_compile=xla)
    return model


def ceiling_only(phase: str, size: int, batch: int, steps: int, mixed: bool, xla: bool):
    """The compute ceiling: one random batch in memory, fed again at every step."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 2, (batch, 1)).astype("float32")
    model = _model(phase, size, mixed, xla)
    return _images_per_second(model, _forever(x, y), steps, batch), None


def _forever(x, y):
    while True:
        yield x, y


def measure(phase: str, size: int, batch: int, steps: int, mixed: bool, xla: bool,
            train_dir: str):
    import tensorflow as tf

    from admod import datasets
    from admod.options import AugmentOptions

    model = _model(phase, size, mixed, xla)
    pipeline = datasets.make_dataset(train_dir, size, batch, training=True,
                                     augment_config=AugmentOptions(), seed=0)
    for _ in pipeline:  # one pass fills the cache, as the first epoch of a run does
        pass
    pipeline = pipeline.repeat()
    x, y = next(iter(pipeline))
    ceiling = tf.data.Dataset.from_tensors((x, y)).repeat()
    memory_rate = _images_per_second(model, ceiling, steps, batch)
    pipeline_rate = _images_per_second(model, pipeline, steps, batch)
    return memory_rate, pipeline_rate


def _accelerators() -> list[str]:
    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    return [g.name for g in tf.config.list_physical_devices("GPU")]


def _configs(matrix: bool, gpus: list[str]) -> list[tuple[bool, bool]]:
    """(mixed, xla) pairs to run. Under JAX every step is compiled by XLA: no xla=False row."""
    xla_values = (True,) if keras.backend.backend() == "jax" else (False, True)
    mixed_values = (False, True) if matrix and gpus else (False,)
    if not (matrix and gpus):
        xla_values = xla_values[:1]
    return list(itertools.product(mixed_values, xla_values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--phases", default="head,fine_tune")
    parser.add_argument("--matrix", action="store_true", help="mixed precision x XLA (GPU)")
    parser.add_argument("--ceiling-only", action="store_true",
                        help="the in-memory ceiling alone (no input pipeline, no TensorFlow)")
    args = parser.parse_args()
    train_dir = None
    if not args.ceiling_only:
        from common import jpeg_folder, shards

        train_dir = shards(jpeg_folder(args.images))["train"]
    gpus = _accelerators()
    print(f"machine: {os.cpu_count()} cores, GPUs: {gpus or 'none'}; Keras "
          f"{keras.__version__} on {keras.backend.backend()}; {args.size} px, "
          f"batch {args.batch_size}, {args.steps} timed steps")
    print(f"{'phase':<10}{'mixed':>7}{'xla':>6}{'ceiling img/s':>15}{'pipeline img/s':>16}"
          f"{'ratio':>7}{'input share':>13}")
    for phase in args.phases.split(","):
        for mixed, xla in _configs(args.matrix, gpus):
            if args.ceiling_only:
                ceiling, real = ceiling_only(phase, args.size, args.batch_size, args.steps,
                                             mixed, xla)
                print(f"{phase:<10}{mixed!s:>7}{xla!s:>6}{ceiling:>15.1f}", flush=True)
                continue
            ceiling, real = measure(phase, args.size, args.batch_size, args.steps, mixed, xla,
                                    train_dir)
            ratio = real / ceiling
            print(f"{phase:<10}{mixed!s:>7}{xla!s:>6}{ceiling:>15.1f}{real:>16.1f}"
                  f"{ratio:>7.2f}{max(0.0, 1 - ratio):>13.0%}", flush=True)


if __name__ == "__main__":
    main()
