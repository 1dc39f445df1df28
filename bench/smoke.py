"""Every benchmark run as docs/benchmarks.md runs it, at a tiny size, so that none can rot
(`make bench-smoke`, in CI). Asserts only that each completes and prints its figures.

    .venv/bin/python bench/smoke.py [NAME ...]

Each runs from the repository root in its own process, as `.venv/bin/python bench/NAME.py
...`. The inputs that a benchmark takes from a run (split outputs, a run's predictions) are
made here, small.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURE = re.compile(r"\d+\.\d+|\d+ ")  # a measured figure in the output
TIMEOUT_S = 600


def _calibration_run(work: str) -> str:
    """A run folder holding what bench/calibration.py reads: evaluate/predictions."""
    import numpy as np
    import pandas as pd

    folder = os.path.join(work, "run", "pipeline", "evaluate")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    raw = np.clip(0.3 * labels + rng.uniform(0, 0.7, 200), 0, 1)
    pd.DataFrame({"label": labels, "raw_probability": raw, "split": "validation"}).to_csv(
        os.path.join(folder, "predictions"), index=False)
    return os.path.join(work, "run")


def _split_outs(work: str) -> tuple[str, str]:
    """Two `admod split` outputs of the same small demo data, same seed: compare_splits exits 1
    when they differ."""
    from admod.demo_data import write_demo_data

    data = os.path.join(work, "data")
    write_demo_data(data, 80, seed=0)
    outs = []
    for attempt, seed in enumerate((1, 1)):
        outs.append(os.path.join(work, f"split-{attempt}"))
        subprocess.run([sys.executable, "-m", "admod.pipeline.cli", "split", "--data", data,
                        "--out", outs[-1], "--seed", str(seed)], check=True,
                       capture_output=True, timeout=TIMEOUT_S)
    return outs[0], outs[1]


def commands(work: str) -> dict[str, list[str]]:
    before, after = _split_outs(work)
    return {
        "calibration": [_calibration_run(work)],
        "compare_splits": [before, after],
        "input_pipeline": ["--images", "40", "--batches", "2", "--size", "64",
                           "--batch-size", "8"],
        "interval_coverage": ["--sets", "3", "--allowed", "40", "--not-allowed", "20",
                              "--resamples", "50"],
        "near_copies": ["--creatives", "80", "--variants", "2"],
        "split": ["--images", "200", "--workers", "1", "--mix", "current", "--repeat", "1",
                  "--root", work],
        "split_store": ["--images", "40", "--workers", "1", "--repeat", "1"],
        "stop_on_sigterm": ["--images", "200", "--workers", "2", "--after", "2"],
        "train_step": ["--images", "40", "--size", "32", "--batch-size", "4", "--steps", "2"],
        "train_step --ceiling-only": ["--ceiling-only", "--size", "32", "--batch-size", "4",
                                      "--steps", "2", "--phases", "head"],
    }


def main() -> None:
    chosen = sys.argv[1:]
    failed = []
    with tempfile.TemporaryDirectory(prefix="admod-bench-smoke-") as work:
        for name, args in commands(work).items():
            script = name.split()[0]
            if chosen and script not in chosen:
                continue
            started = time.monotonic()
            result = subprocess.run([sys.executable, f"bench/{script}.py", *args], cwd=ROOT,
                                    capture_output=True, text=True, timeout=TIMEOUT_S)
            took = time.monotonic() - started
            last = (result.stdout.strip().splitlines() or [""])[-1]
            ok = result.returncode == 0 and FIGURE.search(result.stdout)
            print(f"{'ok  ' if ok else 'FAIL'} {name} ({took:.0f} s): {last[:110]}", flush=True)
            if not ok:
                failed.append(name)
                print(result.stdout[-2000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
    if failed:
        sys.exit(f"bench smoke: {', '.join(failed)} failed")


if __name__ == "__main__":
    main()
