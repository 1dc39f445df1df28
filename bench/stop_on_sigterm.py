"""Benchmark: how long `admod split` takes to stop on SIGTERM during the check, and what it
leaves behind (a pod's grace period is 30 s by default; after it, Kubernetes kills dirty).

    .venv/bin/python bench/stop_on_sigterm.py --images 16000 --workers 2 --after 10

Splits a folder of generated JPEG ads (~300-900 px, made once) into a new --out with a private
TMPDIR, sends SIGTERM `--after` seconds into the run, and prints the seconds from the signal to
the exit, the exit status, the check's full time (one uninterrupted run, unless --no-full), and
every file left beside --out or in TMPDIR.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import jpeg_folder  # noqa: E402

ADMOD = [sys.executable, "-m", "admod.pipeline.cli"]


def _split(data: str, work: str, workers: int,
           after: float | None) -> tuple[float, int, float, str]:
    """(seconds from start to SIGTERM or exit, exit status, seconds from SIGTERM to exit, the
    split's line on its stages' times)."""
    tmp = os.path.join(work, "tmp")
    os.makedirs(tmp)
    env = {**os.environ, "TMPDIR": tmp}
    started = time.perf_counter()
    process = subprocess.Popen([*ADMOD, "split", "--data", data, "--out",
                                os.path.join(work, "out"), "--split-workers", str(workers)],
                               env=env, stdout=subprocess.DEVNULL, text=True,
                               stderr=subprocess.PIPE if after is None else subprocess.DEVNULL)
    if after is None:
        stages = [line for line in process.stderr if "split stages" in line]
        status = process.wait()
        return time.perf_counter() - started, status, 0.0, "".join(stages).strip()
    time.sleep(after)
    signalled = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    status = process.wait()
    return signalled - started, status, time.perf_counter() - signalled, ""


def _left(work: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), work)
                  for d, dirs, files in os.walk(work) for f in files + dirs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=16000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--after", type=float, default=10.0, help="seconds before SIGTERM")
    parser.add_argument("--no-full", action="store_true", help="skip the uninterrupted run")
    args = parser.parse_args()
    data = jpeg_folder(args.images)
    print(f"{args.images} images, {args.workers} check processes, {os.cpu_count()} cores")
    if not args.no_full:
        with tempfile.TemporaryDirectory() as work:
            took, status, _, stages = _split(data, work, args.workers, None)
        print(f"uninterrupted split: {took:.1f} s, exit {status}; {stages}")
    with tempfile.TemporaryDirectory() as work:
        before, status, stop, _ = _split(data, work, args.workers, args.after)
        left = _left(work)
    print(f"SIGTERM after {before:.1f} s: exit {status} {stop:.2f} s later; "
          f"left behind: {left if left != ['tmp'] else 'nothing (TMPDIR empty, no --out)'}")


if __name__ == "__main__":
    main()
