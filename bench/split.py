"""Benchmark: the split against its floor, on the same files with the same process count.

    .venv/bin/python bench/split.py [--images 10000] [--workers 2] [--mix current,realistic]
                                    [--repeat 3] [--merge-processes 1,2]

The floor is what checking every image cannot avoid: read the file, hash it (sha256), decode it
fully to RGB with Pillow; here in N processes over the whole folder. The split is
`split.run_split` with N workers (partitions, one process each, as `admod split
--split-workers N` does): list, check, merge. Both run on the same generated folder, one after
the other, alternately (--repeat times), and the ratio of the medians split / floor is printed
for each worker count and mix. Each timed run starts after os.sync(), so that none pays for
writing back the files of the one before.

Two mixes of generated ads, 100 to 1,200 px on the long side:
  current    JPEG, PNG, GIF, BMP and WebP in equal shares (the mix earlier figures used)
  realistic  60% JPEG, 32% PNG, 4% GIF, 4% WebP, no BMP: display-ad creatives are photos (JPEG)
             and flat graphics (PNG); animated banners (GIF) and WebP from newer ad servers are
             a few percent each; BMP is not an ad format.
Each folder is generated once and reused. Record the figures in docs/benchmarks.md.

--merge-processes: then the merge alone (`split.merge_parts`), on the same checked partitions,
with each number of processes (a bucket each at a time), --repeat times, and its rate in
images/s and MiB/s of checked data; then the merge as the pipeline fans it out over tasks
(each merge-bucket task timed alone, then the split's last task).
"""

import argparse
import hashlib
import io
import logging
import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import time

from PIL import Image

from admod import images, split, storage
from admod.demo_data import write_demo_data
from admod.options import ImageRules, SplitOptions

MIXES = {
    "current": ("jpg", "png", "gif", "bmp", "webp"),
    "realistic": ("jpg",) * 15 + ("png",) * 8 + ("gif", "webp"),  # 60/32/4/4 %
}
SCALES = (1.0, 2.0, 3.0, 4.0)  # from ~100 px to ~1200 px on the long side


def generate(folder: str, count: int, formats: tuple[str, ...]) -> None:
    """`count` demo ads, each scale and each format in turn."""
    write_demo_data(folder, count, scales=SCALES, formats=formats)


def floor_one(path: str) -> int:
    """Read, hash, decode fully to RGB: the work no check of an image can skip."""
    with open(path, "rb") as f:
        data = f.read()
    hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB")
    return 1


def measure_floor(paths: list[str], processes: int) -> float:
    """Images per second of the floor over `paths` in `processes` processes."""
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        done = sum(pool.imap_unordered(floor_one, paths, chunksize=64))
    return done / (time.monotonic() - started)


def measure_split(folder: str, workers: int) -> tuple[float, str]:
    """Images per second of the whole split (list, check, merge), and a line of its figures."""
    with tempfile.TemporaryDirectory() as out:
        out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
        started = time.monotonic()
        summary = split.run_split(folder, out_dirs, os.path.join(out, "manifest.csv"),
                                  SplitOptions(), ImageRules(), partitions=workers)
        seconds = time.monotonic() - started
        shard_bytes = sum(os.path.getsize(os.path.join(d, f)) for d in out_dirs.values()
                          for f in os.listdir(d))
    rate = summary.listed / seconds
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return rate, (f"{summary.listed} images in {seconds:.1f} s, usable "
                  f"{int(summary.counts.values.sum())}, shards {shard_bytes / 2**20:.0f} MiB, "
                  f"peak RSS {parent:.0f} MiB (largest child {child:.0f} MiB)")


def measure_merge(folder: str, partitions: int, processes: list[int], repeat: int) -> None:
    """The merge alone with each of `processes`, on partitions checked once (the processes
    asked for, whatever the data's size: PARALLEL_MERGE_BYTES off meanwhile)."""
    floor, split.PARALLEL_MERGE_BYTES = split.PARALLEL_MERGE_BYTES, 0
    try:
        _time_merges(folder, partitions, processes, repeat)
    finally:
        split.PARALLEL_MERGE_BYTES = floor


def _time_merges(folder: str, partitions: int, processes: list[int], repeat: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        parts = split.list_and_check(folder, work, ImageRules(), partitions)
        megabytes = split.bytes_under(parts) / 2**20
        for n in processes:
            seconds = []
            for _ in range(repeat):
                out = os.path.join(work, "out")
                out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
                os.sync()
                started = time.monotonic()
                summary = split.merge_parts(parts, out_dirs, os.path.join(out, "manifest.csv"),
                                            SplitOptions(), n)
                seconds.append(time.monotonic() - started)
                shutil.rmtree(out)
            median = statistics.median(seconds)
            print(f"  merge alone, {n} process(es): {summary.listed / median:.0f} images/s, "
                  f"{megabytes / median:.0f} MiB/s of {megabytes:.0f} MiB checked (median of "
                  f"{repeat}: {' '.join(f'{t:.1f}' for t in seconds)} s)", flush=True)
        _time_fanned_out(parts, work, folder)


def _time_fanned_out(parts: list[str], work: str, data_root: str) -> None:
    """The merge as the pipeline fans it out: each merge-bucket task (one process, one bucket of
    every part), one after the other, then the split's last task (manifest and report)."""
    from admod import split_steps, split_tasks

    options, out = SplitOptions(), os.path.join(work, "fanned")
    results, rates = [], []
    for bucket in range(split.BUCKETS):
        folder = os.path.join(out, f"bucket-{bucket:02d}")
        out_dirs = {name: os.path.join(folder, name) for name in split.SPLITS}
        results.append(os.path.join(folder, "merged"))
        megabytes = split.bytes_under([split.bucket_folder(p, bucket) for p in parts]) / 2**20
        os.sync()
        started = time.monotonic()
        figures = split_tasks.merge_bucket_step(
            part_uris=parts, bucket=f"{bucket:02d}", out_dirs=out_dirs, out_uris=out_dirs,
            result_dir=results[-1], options=options)
        seconds = time.monotonic() - started
        rates.append((figures["kept"] + figures["excluded"]) / seconds)
        print(f"  merge-bucket {bucket:02d}: {figures['kept']} images, {megabytes:.0f} MiB in "
              f"{seconds:.2f} s ({megabytes / seconds:.0f} MiB/s)", flush=True)
    final = os.path.join(out, "split")
    os.makedirs(final)
    started = time.monotonic()
    figures = split_steps.finish_split_step(
        result_dirs=results, part_uris=parts, data_root=data_root,
        out_dirs={name: os.path.join(final, name) for name in split.SPLITS},
        manifest_path=os.path.join(final, "manifest.csv"),
        report_path=os.path.join(final, "report.md"), options=options, rules=ImageRules())
    seconds = time.monotonic() - started
    print(f"  merge-bucket tasks: median {statistics.median(rates):.0f} images/s each; split's "
          f"last task: {figures['listed']} manifest rows in {seconds:.2f} s "
          f"({figures['listed'] / seconds:.0f} rows/s)", flush=True)
    shutil.rmtree(out)


def bench_mix(name: str, count: int, workers: list[int], root: str, repeat: int,
              merge_processes: list[int]) -> None:
    folder = os.path.join(root, f"admod-bench-split-{name}-{count}")
    marker = os.path.join(folder, f".generated-{count}")
    if not os.path.exists(marker):
        generate(folder, count, MIXES[name])
        open(marker, "w").close()
    paths = [uri for uri, _ in storage.list_files(folder) if images.has_image_extension(uri)]
    megabytes = sum(os.path.getsize(p) for p in paths) / 2**20
    print(f"mix {name}: {len(paths)} images, {megabytes:.0f} MiB, {os.cpu_count()} cores",
          flush=True)
    for n in workers:
        floors, splits = [], []
        for _ in range(repeat):  # alternated, so that both see the same machine
            os.sync()  # neither pays for writing back what ran before it
            floors.append(measure_floor(paths, n))
            os.sync()
            rate, figures = measure_split(folder, n)
            splits.append(rate)
        floor, rate = statistics.median(floors), statistics.median(splits)
        print(f"  {n} process(es): floor {floor:.0f} images/s, split {rate:.0f} images/s, "
              f"ratio {rate / floor:.2f} (medians of {repeat}; floor "
              f"{' '.join(f'{f:.0f}' for f in floors)}, split "
              f"{' '.join(f'{r:.0f}' for r in splits)}; last split: {figures})", flush=True)
    if merge_processes:
        measure_merge(folder, max(workers), merge_processes, repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--workers", default="2", help="comma-separated process counts")
    parser.add_argument("--mix", default="current,realistic",
                        help=f"comma-separated, of {', '.join(MIXES)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, medians printed")
    parser.add_argument("--merge-processes", default="",
                        help="comma-separated process counts for the merge alone")
    parser.add_argument("--root", default=tempfile.gettempdir(),
                        help="where the generated folders are kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="    %(message)s")
    stages = logging.getLogger("admod.split")  # its one line of stage times per split
    stages.setLevel(logging.INFO)
    stages.addFilter(lambda record: record.getMessage().startswith("split stages"))
    workers = [int(n) for n in args.workers.split(",")]
    merge_processes = [int(n) for n in args.merge_processes.split(",") if n]
    for name in args.mix.split(","):
        bench_mix(name, args.images, workers, args.root, args.repeat, merge_processes)


if __name__ == "__main__":
    main()
