"""How often admod's 95% bootstrap intervals cover the true value, on simulated evaluation sets.

Each set draws `--allowed` and `--not-allowed` scores from two Beta distributions (a model of
ROC-AUC about 0.91, miscalibrated on purpose) and decides at 0.5; the truth of each figure is
the population's, computed from the distributions (numerical integration). Run from the
repository root:

    .venv/bin/python bench/interval_coverage.py --sets 1000
"""

import argparse
import os
import sys
import time

import numpy as np
from scipy import integrate, stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from admod import uncertainty  # noqa: E402

POSITIVE, NEGATIVE = stats.beta(5, 2), stats.beta(2, 5)  # not allowed, allowed
THRESHOLD = 0.5


def truth(allowed: int, not_allowed: int) -> dict[str, float]:
    """Each figure of the population at this class mix (a set's counts are fixed)."""
    tpr, fpr = POSITIVE.sf(THRESHOLD), NEGATIVE.sf(THRESHOLD)
    tp, fp, fn = not_allowed * tpr, allowed * fpr, not_allowed * (1 - tpr)
    auc = integrate.quad(lambda s: POSITIVE.pdf(s) * NEGATIVE.cdf(s), 0, 1)[0]

    def precision_at(t):
        return not_allowed * POSITIVE.sf(t) / (not_allowed * POSITIVE.sf(t)
                                               + allowed * NEGATIVE.sf(t))

    pr_auc = integrate.quad(lambda t: precision_at(t) * POSITIVE.pdf(t), 0, 1, limit=200)[0]
    n = allowed + not_allowed
    edges = np.linspace(0, 1, uncertainty.ECE_BINS + 1)
    ece = sum(abs(integrate.quad(
        lambda s: not_allowed * POSITIVE.pdf(s) * (1 - s) - allowed * NEGATIVE.pdf(s) * s,
        low, high)[0]) for low, high in zip(edges[:-1], edges[1:], strict=True)) / n
    return {"accuracy": (tp + allowed * (1 - fpr)) / n, "precision": tp / (tp + fp),
            "recall": tpr, "f1": 2 * tp / (2 * tp + fp + fn), "roc_auc": auc,
            "pr_auc": pr_auc, "ece": ece}


def coverage(sets: int, allowed: int, not_allowed: int, resamples: int, seed: int = 0,
             names=uncertainty.INTERVAL_METRICS) -> dict[str, float]:
    """metric -> the share of `sets` simulated sets whose interval holds the truth."""
    rng = np.random.default_rng(seed)
    true = truth(allowed, not_allowed)
    labels = np.r_[np.zeros(allowed), np.ones(not_allowed)]
    covered = dict.fromkeys(names, 0)
    for i in range(sets):
        scores = np.r_[NEGATIVE.rvs(allowed, random_state=rng),
                       POSITIVE.rvs(not_allowed, random_state=rng)]
        scored = uncertainty.Scored.of(labels, scores, scores >= THRESHOLD)
        for name, (low, high) in uncertainty.intervals(scored, seed + i, resamples,
                                                       names).items():
            covered[name] += low <= true[name] <= high
    return {name: n / sets for name, n in covered.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--allowed", type=int, default=350)
    parser.add_argument("--not-allowed", type=int, default=150)
    parser.add_argument("--resamples", type=int, default=uncertainty.RESAMPLES)
    args = parser.parse_args()
    started = time.monotonic()
    shares = coverage(args.sets, args.allowed, args.not_allowed, args.resamples)
    print(f"95% interval coverage over {args.sets} sets of {args.allowed} allowed + "
          f"{args.not_allowed} not allowed images, {args.resamples} resamples "
          f"({time.monotonic() - started:.0f} s):")
    for name, share in shares.items():
        print(f"  {name:<10} {share:.3f}")


if __name__ == "__main__":
    main()
