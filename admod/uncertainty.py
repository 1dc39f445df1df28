"""How far each evaluation figure could move on other images like these: confidence intervals
from a stratified bootstrap over the evaluation images, as TFMA computes them.

Each class is resampled on its own (`scipy.stats.bootstrap` with the two classes as two
samples), so every resample keeps the class counts of the evaluation set. What is resampled
is the images' row numbers: one resample then scores every model on the same images, which
makes champion-vs-challenger differences paired. The figures are computed in numpy over a
whole batch of resamples at once and equal scikit-learn's on the full set (tested).
"""

import dataclasses
import functools

import numpy as np
from scipy import stats

from admod.metric_names import GATING_METRICS

# With 2,000 resamples the bounds of every figure move by less than 0.005 between seeds on
# the method's validation size (1,322 images; tested), and the whole bootstrap of one model
# takes about 0.3 s there (this machine: 2 cores).
RESAMPLES = 2000
LEVEL = 0.95
SEED = 0  # the resamples are the same in every run: one model's intervals never move
INTERVAL_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "ece")
ECE_BINS = 10


@dataclasses.dataclass(frozen=True)
class Scored:
    """One model's scores of the evaluation images, row by row: the label (1: not allowed),
    the served probability, the served decision and the probability ECE is measured on (one
    the calibration was not fitted on)."""
    labels: np.ndarray
    probability: np.ndarray
    decision: np.ndarray
    held_out: np.ndarray

    @classmethod
    def of(cls, labels, probability, decision, held_out=None) -> "Scored":
        probability = np.asarray(probability, dtype=np.float64)
        return cls(np.asarray(labels).astype(bool), probability,
                   np.asarray(decision).astype(bool),
                   probability if held_out is None else np.asarray(held_out, dtype=np.float64))


def figures(scored: Scored, rows: np.ndarray, names=INTERVAL_METRICS) -> np.ndarray:
    """The figures `names` of the images `rows` (..., n): one array (len(names), ...)."""
    y, d = scored.labels[rows], scored.decision[rows]
    tp, fp, fn = (y & d).sum(-1), (~y & d).sum(-1), (y & ~d).sum(-1)
    by_score = functools.cache(lambda: _by_score(y, scored.probability, rows))  # for both AUCs
    computed = {
        "accuracy": lambda: (y == d).mean(-1),
        "precision": lambda: _ratio(tp, tp + fp),
        "recall": lambda: _ratio(tp, tp + fn),
        "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": lambda: _roc_auc(*by_score()),
        "pr_auc": lambda: _average_precision(*by_score()),
        "ece": lambda: _ece(y, scored.held_out[rows]),
    }
    return np.stack([computed[name]() for name in names])


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)


def _by_score(y, probability, rows) -> tuple[np.ndarray, np.ndarray]:
    """How many not-allowed (positive) and allowed (negative) images of each set of `rows` have
    each distinct score, from the lowest score up: two arrays (..., distinct scores). The
    resamples only draw from the evaluation's scores, so counting them replaces sorting each
    resample."""
    distinct, bins = np.unique(probability, return_inverse=True)
    bins = bins.reshape(probability.shape)[rows]
    sets = int(np.prod(bins.shape[:-1]))
    offset = bins.reshape(sets, -1) + len(distinct) * np.arange(sets)[:, None]
    positive = y.reshape(sets, -1)
    shape = bins.shape[:-1] + (len(distinct),)
    return tuple(np.bincount(offset[which], minlength=sets * len(distinct)).reshape(shape)
                 for which in (positive, ~positive))


def _roc_auc(positives, negatives):
    """Mann-Whitney: the chance that a not-allowed image scores above an allowed one (ties
    count half)."""
    below = np.cumsum(negatives, -1) - negatives
    return ((positives * (below + negatives / 2)).sum(-1)
            / (positives.sum(-1) * negatives.sum(-1)))


def _average_precision(positives, negatives):
    """scikit-learn's average precision: precision at each distinct score, weighted by the
    recall it adds."""
    positives, negatives = positives[..., ::-1], negatives[..., ::-1]  # the highest score first
    tp = np.cumsum(positives, -1)
    seen = tp + np.cumsum(negatives, -1)
    return (positives * tp / np.maximum(seen, 1)).sum(-1) / tp[..., -1]


def _ece(y, p):
    """Expected calibration error over ECE_BINS equal-width bins (admod.evaluation's)."""
    edges = np.linspace(0, 1, ECE_BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, ECE_BINS - 1)
    gaps = [np.abs(((which == b) * (y - p)).sum(-1)) for b in range(ECE_BINS)]
    return np.sum(gaps, axis=0) / y.shape[-1]


def _bootstrap(labels: np.ndarray, statistic, seed: int, resamples: int) -> np.ndarray:
    """[low, high] per value of `statistic(rows)`, resampling each class's rows on its own. A
    class of one image is the same image in every resample (scipy resamples two or more); with
    no class to resample, the interval is the value itself."""
    by_class = [np.flatnonzero(labels == value) for value in (False, True)]
    single = np.concatenate([rows for rows in by_class if len(rows) == 1] + [[]]).astype(np.int64)
    resampled = tuple(rows.astype(np.float64) for rows in by_class if len(rows) > 1)
    if not resampled:
        value = statistic(single)
        return np.stack([value, value], -1)

    def with_singles(*classes, axis=-1):
        rows = np.concatenate(classes, axis=-1).astype(np.int64)
        fixed = np.broadcast_to(single, rows.shape[:-1] + single.shape)
        return statistic(np.concatenate([rows, fixed], axis=-1))

    result = stats.bootstrap(resampled, with_singles, vectorized=True, paired=False,
                             n_resamples=resamples, confidence_level=LEVEL,
                             method="percentile", random_state=np.random.default_rng(seed),
                             batch=max(1, 4_000_000 // max(1, len(labels))))
    return np.stack([result.confidence_interval.low, result.confidence_interval.high], -1)


def intervals(scored: Scored, seed: int = SEED, resamples: int = RESAMPLES,
              names=INTERVAL_METRICS) -> dict[str, list[float]]:
    """metric -> [low, high], the LEVEL interval of each figure of `names`."""
    bounds = _bootstrap(scored.labels, lambda rows: figures(scored, rows, names), seed,
                        resamples)
    return {name: [float(low), float(high)] for name, (low, high) in zip(names, bounds,
                                                                         strict=True)}


def paired_differences(challenger: Scored, champion: Scored, seed: int = SEED,
                       resamples: int = RESAMPLES, names=GATING_METRICS) -> dict[str, dict]:
    """metric -> {"difference": champion - challenger, "interval": [low, high]}, both models
    scored on the same resampled images each time."""
    everything = np.arange(len(challenger.labels))

    def difference(rows):
        return figures(champion, rows, names) - figures(challenger, rows, names)

    bounds = _bootstrap(challenger.labels, difference, seed, resamples)
    point = difference(everything)
    return {name: {"difference": float(value), "interval": [float(low), float(high)]}
            for name, value, (low, high) in zip(names, point, bounds, strict=True)}


def with_interval(value: float, interval: list[float], signed: bool = False) -> str:
    """'0.9109 [0.8500, 0.9600]', as every report writes a figure with its interval."""
    form = "+.4f" if signed else ".4f"
    low, high = interval
    return f"{value:{form}} [{low:{form}}, {high:{form}}]"
