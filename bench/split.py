"""Benchmark: images checked and sharded per second (and per core), and peak memory, for the
split step on a generated folder of mixed sizes and formats.

    .venv/bin/python bench/split.py [--images 20000] [--folder /tmp/admod-bench-split]

The folder is generated once and reused. Record the figures in docs/benchmarks.md.
"""

import argparse
import os
import resource
import tempfile
import time

import numpy as np

from admod import split, storage
from admod.defaults import CLASS_NAMES
from admod.demo_data import draw_ad

FORMATS = (("jpg", "JPEG"), ("png", "PNG"), ("gif", "GIF"), ("bmp", "BMP"), ("webp", "WEBP"))
SCALES = (1.0, 2.0, 3.0, 4.0)  # from ~100 px to ~1200 px on the long side


def generate(folder: str, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in CLASS_NAMES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    started = time.monotonic()
    for i in range(count):
        label = int(rng.random() < 0.28)
        image = draw_ad(rng, label, SCALES[i % len(SCALES)])
        extension, fmt = FORMATS[i % len(FORMATS)]
        image.save(os.path.join(folder, CLASS_NAMES[label], f"img_{i:06d}.{extension}"), format=fmt)
        if (i + 1) % 5000 == 0:
            print(f"generated {i + 1}/{count} in {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "admod-bench-split"))
    args = parser.parse_args()
    marker = os.path.join(args.folder, f".generated-{args.images}")
    if not os.path.exists(marker):
        generate(args.folder, args.images)
        open(marker, "w").close()
    total_bytes = sum(size for _, size in storage.list_files(args.folder))
    with tempfile.TemporaryDirectory() as out:
        out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
        config = split.SplitConfig(val_fraction=0.2, test_fraction=0.0, seed=42, min_side=32,
                                   max_pixels=50_000_000)
        started = time.monotonic()
        manifest = split.run_split(args.folder, out_dirs, config)
        seconds = time.monotonic() - started
        shard_bytes = sum(os.path.getsize(os.path.join(d, f)) for d in out_dirs.values()
                          for f in os.listdir(d))
    cores = os.cpu_count()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = len(manifest) / seconds
    print(f"images: {len(manifest)} ({total_bytes / 2**20:.0f} MiB), usable: "
          f"{(manifest['split'] != '').sum()}, shards: {shard_bytes / 2**20:.0f} MiB")
    print(f"time: {seconds:.1f} s, {rate:.0f} images/s, {rate / cores:.0f} images/s/core "
          f"({cores} cores, {config.workers} threads), peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
