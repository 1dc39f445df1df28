"""Benchmark: `admod split` reading its data from an S3 store against reading the same files
from a local folder. Run from the repository root:

    .venv/bin/python bench/split_store.py [--images 2000] [--workers 2] [--repeat 3]

The store is a real S3 HTTP server on 127.0.0.1 (moto's, as the s3:// tests use; a MinIO-style
endpoint through AWS_ENDPOINT_URL), on the same two cores as the split: the figure is what
admod's listing and reads through boto3 cost next to local reads, with the server's own work
included, not what a remote S3 or MinIO serves. The images are the realistic mix of
bench/split.py. Both splits run alternately, --repeat times; the medians are printed.
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from admod import s3, split, storage  # noqa: E402
from admod.options import ImageRules, SplitOptions  # noqa: E402
from bench.split import MIXES, generate  # noqa: E402


def timed_split(root: str, workers: int) -> float:
    """Seconds for the whole split (list, check, merge) of `root`."""
    with tempfile.TemporaryDirectory() as out:
        out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
        started = time.monotonic()
        split.run_split(root, out_dirs, os.path.join(out, "manifest.csv"), SplitOptions(),
                        ImageRules(), partitions=workers)
        return time.monotonic() - started


def main() -> None:
    from moto.server import ThreadedMotoServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}",
                       "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    try:
        with tempfile.TemporaryDirectory() as work:
            folder = os.path.join(work, "ads")
            generate(folder, args.images, MIXES["realistic"])
            megabytes = sum(size for _, size in storage.list_files(folder)) / 2**20
            s3.client().create_bucket(Bucket="bench-ads")
            storage.upload_dir(folder, "s3://bench-ads/ads")
            local, store = [], []
            for _ in range(args.repeat):
                local.append(timed_split(folder, args.workers))
                store.append(timed_split("s3://bench-ads/ads", args.workers))
    finally:
        server.stop()
    local_s, store_s = statistics.median(local), statistics.median(store)
    print(f"{args.images} images, {megabytes:.0f} MiB, {args.workers} worker(s), "
          f"{os.cpu_count()} cores, medians of {args.repeat}:")
    print(f"  local folder: {args.images / local_s:.0f} images/s ({megabytes / local_s:.1f} MiB/s;"
          f" {' '.join(f'{t:.1f}' for t in local)} s)")
    print(f"  s3:// store:  {args.images / store_s:.0f} images/s ({megabytes / store_s:.1f} MiB/s;"
          f" {' '.join(f'{t:.1f}' for t in store)} s)")
    print(f"  store / local: {local_s / store_s:.2f}")


if __name__ == "__main__":
    main()
