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

from admod import split, storage
from admod.demo_data import write_demo_data

FORMATS = ("jpg", "png", "gif", "bmp", "webp")
SCALES = (1.0, 2.0, 3.0, 4.0)  # from ~100 px to ~1200 px on the long side


def generate(folder: str, count: int) -> None:
    """`count` demo ads, each scale and each format in turn."""
    write_demo_data(folder, count, scales=SCALES, formats=FORMATS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--folder",
                        default=os.path.join(tempfile.gettempdir(), "admod-bench-split"))
    args = parser.parse_args()
    marker = os.path.join(args.folder, f".generated-{args.images}")
    if not os.path.exists(marker):
        generate(args.folder, args.images)
        open(marker, "w").close()
    total_bytes = sum(size for _, size in storage.list_files(args.folder))
    with tempfile.TemporaryDirectory() as out:
        out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
        config = split.SplitConfig()  # the method's split
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
