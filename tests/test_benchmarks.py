"""The benchmarks added with the decision figures run exactly as docs/benchmarks.md says, from
the repository root, at a tiny size: each completes and prints its figures (none can rot)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("script, arguments, printed", [
    ("bench/interval_coverage.py", ["--sets", "3", "--resamples", "200"],
     ["95% interval coverage over 3 sets", "roc_auc"]),
    ("bench/near_copies.py", ["--creatives", "40", "--variants", "2", "--seed", "3"],
     ["validation images with a near-copy in train, by content hash alone",
      "with near-copy groups"]),
    ("bench/split_store.py", ["--images", "40", "--repeat", "1"],
     ["local folder:", "s3:// store:", "store / local"]),
])
def test_the_benchmark_runs_as_documented(script, arguments, printed):
    result = subprocess.run([sys.executable, script, *arguments], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for words in printed:
        assert words in result.stdout, result.stdout
    assert f".venv/bin/python {script}" in open(os.path.join(REPO, "docs",
                                                             "benchmarks.md")).read()
