"""Benchmark: images checked and sharded per second (per worker and per core), and peak memory
per task, for the split on a generated folder of mixed sizes and formats.

    .venv/bin/python bench/split.py [--images 20000] [--workers 1,2] [--folder DIR]

--workers runs the split once per count (partitions, one process each, as `admod split
--workers` does). The folder is generated once and reused. Record the figures in
docs/benchmarks.md and docs/scaling.md.
"""

import argparse
import logging
import os
import resource
import tempfile
import time

from admod import split, storage
from admod.demo_data import write_demo_data
from admod.options import ImageRules, SplitOptions

FORMATS = ("jpg", "png", "gif", "bmp", "webp")
SCALES = (1.0, 2.0, 3.0, 4.0)  # from ~100 px to ~1200 px on the long side


def generate(folder: str, count: int) -> None:
    """`count` demo ads, each scale and each format in turn."""
    write_demo_data(folder, count, scales=SCALES, formats=FORMATS)


def measure(folder: str, workers: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
        started = time.monotonic()
        summary = split.run_split(folder, out_dirs, os.path.join(out, "manifest.csv"),
                                  SplitOptions(), ImageRules(), partitions=workers)
        seconds = time.monotonic() - started
        shard_bytes = sum(os.path.getsize(os.path.join(d, f)) for d in out_dirs.values()
                          for f in os.listdir(d))
        manifest_bytes = os.path.getsize(os.path.join(out, "manifest.csv"))
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rate = summary.listed / seconds
    print(f"workers {workers}: {summary.listed} images in {seconds:.1f} s, {rate:.0f} images/s "
          f"({rate / workers:.0f} per worker, {rate / os.cpu_count():.0f} per core); usable "
          f"{int(summary.counts.values.sum())}; shards {shard_bytes / 2**20:.0f} MiB, manifest "
          f"{manifest_bytes / 2**20:.1f} MiB; peak RSS: list+merge"
          f"{'+check' if workers == 1 else ''} {parent:.0f} MiB"
          + (f", largest check process {child:.0f} MiB" if workers > 1 else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--workers", default="1", help="comma-separated worker counts")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("admod.split").setLevel(logging.INFO)
    folder = args.folder or os.path.join(tempfile.gettempdir(), f"admod-bench-split-{args.images}")
    marker = os.path.join(folder, f".generated-{args.images}")
    if not os.path.exists(marker):
        generate(folder, args.images)
        open(marker, "w").close()
    total_bytes = sum(size for _, size in storage.list_files(folder))
    print(f"{args.images} images, {total_bytes / 2**20:.0f} MiB, {os.cpu_count()} cores",
          flush=True)
    for workers in (int(n) for n in args.workers.split(",")):
        measure(folder, workers)


if __name__ == "__main__":
    main()
