"""Benchmark: the training input pipeline against Keras 2's ImageDataGenerator, same JPEGs,
same augmentation ranges, same image size and batch size, in one run.

    .venv/bin/pip install -c constraints.txt -e ".[bench]"    # tf-keras, benchmark only
    .venv/bin/python bench/input_pipeline.py [--images 2000] [--batches 40] [--size 224]

Reference: ImageDataGenerator(...).flow_from_directory (decode, resize and augment every image,
every epoch, in Python). admod: make_dataset over the split step's shards; epoch 1 decodes and
fills the cache, later epochs read decoded images from the cache and only augment. Both yield
float32 batches; caffe preprocessing is not counted on either side (admod does it in the model).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from common import jpeg_folder, shards  # noqa: E402

from admod import datasets, resources  # noqa: E402
from admod.options import DEFAULTS
from admod.options import AugmentOptions


def images_per_second(batches, count: int) -> float:
    started, seen = time.perf_counter(), 0
    for i, (x, _) in enumerate(batches):
        seen += len(x)
        if i + 1 == count:
            break
    return seen / (time.perf_counter() - started)


def reference(folder: str, size: int, batch: int):
    from tf_keras.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(
        rotation_range=DEFAULTS.rotation_degrees, width_shift_range=DEFAULTS.width_shift,
        height_shift_range=DEFAULTS.height_shift, shear_range=DEFAULTS.shear_degrees,
        zoom_range=DEFAULTS.zoom, horizontal_flip=DEFAULTS.horizontal_flip)
    return generator.flow_from_directory(folder, target_size=(size, size), batch_size=batch,
                                         class_mode="binary", shuffle=True, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--size", type=int, default=DEFAULTS.image_size)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    args = parser.parse_args()
    folder = jpeg_folder(args.images)
    train_dir = shards(folder)["train"]

    ref = images_per_second(reference(folder, args.size, args.batch_size), args.batches)
    ds = datasets.make_dataset(train_dir, args.size, args.batch_size, training=True,
                               augment_config=AugmentOptions(), seed=0)
    started = time.perf_counter()
    first_epoch = sum(len(x) for x, _ in ds)  # epoch 1: decode, resize, fill the cache
    cold = first_epoch / (time.perf_counter() - started)
    warm = images_per_second(ds.repeat(), args.batches)
    print(f"machine: {os.cpu_count()} cores; {args.images} JPEGs, {args.size} px, "
          f"batch {args.batch_size}, {args.batches} batches timed")
    print(f"ImageDataGenerator.flow_from_directory: {ref:8.1f} images/s")
    print(f"admod make_dataset, cached epochs:      {warm:8.1f} images/s  ({warm / ref:.1f}x)")
    print(f"admod make_dataset, first epoch:        {cold:8.1f} images/s  ({cold / ref:.1f}x; "
          f"decodes and fills the cache, {first_epoch} images)")
    cores = resources.cpu_limit()
    print(f"per CPU core ({cores} here), cached epochs: {warm / cores:8.1f} images/s")


if __name__ == "__main__":
    main()
