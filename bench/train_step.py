"""Benchmark: training images per second fed by the real input pipeline, against the same
model fed from one in-memory batch (the compute ceiling), per phase.

    .venv/bin/python bench/train_step.py [--size 224] [--batch-size 32] [--steps 30]
    .venv/bin/python bench/train_step.py --matrix      # on a GPU: also mixed precision x XLA

The ratio pipeline/ceiling is the share of step time the accelerator is fed; 1 - ratio is the
input pipeline's share of step time. --matrix runs every phase with mixed precision on/off and
XLA on/off (mixed precision and XLA are only switched on when a GPU is present); it is sized to
finish in under 5 minutes on one GPU.
"""

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import jpeg_folder, shards  # noqa: E402

from admod import datasets, training  # noqa: E402
from admod import model as model_lib  # noqa: E402
from admod.options import AugmentOptions


def _images_per_second(model, ds, steps: int, batch: int) -> float:
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # warm up (tracing, XLA compile)
    started = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - started)


def measure(train_dir: str, phase: str, size: int, batch: int, steps: int, mixed: bool, xla: bool):
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    model, _ = model_lib.build_model(size, weights="none")
    if phase == "fine_tune":
        model_lib.unfreeze(model, "all")
    training.compile_model(model, 1e-4, jit_compile=xla)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--phases", default="head,fine_tune")
    parser.add_argument("--matrix", action="store_true", help="mixed precision x XLA (GPU)")
    args = parser.parse_args()
    train_dir = shards(jpeg_folder(args.images))["train"]
    gpus = tf.config.list_physical_devices("GPU")
    both = (False, True)
    configs = list(itertools.product(both, both)) if args.matrix else [(False, False)]
    print(f"machine: {os.cpu_count()} cores, GPUs: {[g.name for g in gpus] or 'none'}; "
          f"{args.size} px, batch {args.batch_size}, {args.steps} timed steps")
    print(f"{'phase':<10}{'mixed':>7}{'xla':>6}{'ceiling img/s':>15}{'pipeline img/s':>16}"
          f"{'ratio':>7}{'input share':>13}")
    for phase in args.phases.split(","):
        for mixed, xla in configs:
            if (mixed or xla) and not gpus:
                continue
            ceiling, real = measure(train_dir, phase, args.size, args.batch_size, args.steps,
                                    mixed, xla)
            ratio = real / ceiling
            print(f"{phase:<10}{mixed!s:>7}{xla!s:>6}{ceiling:>15.1f}{real:>16.1f}"
                  f"{ratio:>7.2f}{max(0.0, 1 - ratio):>13.0%}", flush=True)


if __name__ == "__main__":
    main()
