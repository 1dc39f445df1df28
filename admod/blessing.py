"""The blessing decision behind the conditional push, as TFX's Evaluator makes it.

Value thresholds: a minimum per gating metric and a maximum ECE (0 disables one). Change
threshold: the current champion, scored on the same images, may not beat the challenger on
`gating_metric` by more than `max_regression`. By default (`champion_rule`
not_worse_beyond_noise) that is judged on the paired bootstrap interval of champion -
challenger: refused when the whole interval lies above `max_regression`, so a push neither
flips on noise nor lets a regression that is beyond noise through; `point` judges the point
difference alone. The optional slice gate does the same per slice large enough to judge. No
champion yet: value thresholds alone. No threshold configured at all: not blessed, so nothing
is ever blessed by accident. A NaN figure fails every comparison, so it refuses.
"""

import dataclasses

from admod.options import BlessingOptions
from admod.uncertainty import with_interval


@dataclasses.dataclass
class Decision:
    blessed: bool
    reasons: list[str]


@dataclasses.dataclass
class Evidence:
    """What the decision reads beside the figures: their intervals, and with a champion the
    paired differences (champion - challenger, overall and per slice)."""
    intervals: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    differences: dict[str, dict] | None = None
    slices: list[dict] = dataclasses.field(default_factory=list)


def decide(scores: dict, criteria: BlessingOptions, champion_scores: dict | None = None,
           champion: str | None = None, refusals: list[str] = (),
           evidence: Evidence | None = None) -> Decision:
    """Every comparison made, with both values and the figure's interval, in `reasons`; any of
    `refusals` (what the evaluation could not do) refuses the blessing whatever the figures."""
    evidence = evidence or Evidence()
    minimums = {name: value for name, value in criteria.minimums.items() if value > 0}
    maximums = {name: value for name, value in criteria.maximums.items() if value > 0}
    if not minimums and not maximums and champion_scores is None:
        return Decision(False, ["no threshold is configured and there is no champion: "
                                "a model is never blessed by accident"])
    reasons = [f"refused: {why}" for why in refusals]
    blessed = not refusals
    for name, limit in sorted(minimums.items()):
        ok = scores[name] >= limit
        blessed &= ok
        reasons.append(f"{_figure(name, scores, evidence)} {'>=' if ok else '<'} minimum "
                       f"{limit:.4f}")
    for name, limit in sorted(maximums.items()):
        ok = scores[name] <= limit
        blessed &= ok
        reasons.append(f"{_figure(name, scores, evidence)} {'<=' if ok else '>'} maximum "
                       f"{limit:.4f}")
    if champion_scores is None:
        reasons.append("no champion yet: value thresholds alone")
        return Decision(blessed, reasons)
    ok, reason = _against_champion(scores, champion_scores, champion, criteria, evidence)
    blessed &= ok
    reasons.append(reason)
    if criteria.slice_gate:
        for ok, reason in _slices_against_champion(criteria, evidence):
            blessed &= ok
            reasons.append(reason)
    return Decision(blessed, reasons)


def _figure(name: str, scores: dict, evidence: Evidence) -> str:
    if name in evidence.intervals:
        return f"{name} {with_interval(scores[name], evidence.intervals[name])}"
    return f"{name} {scores[name]:.4f}"


def _against_champion(scores, champion_scores, champion, criteria, evidence) -> tuple:
    metric, margin = criteria.gating_metric, criteria.max_regression
    if criteria.champion_rule == "point" or evidence.differences is None:
        floor = champion_scores[metric] - margin
        ok = scores[metric] >= floor
        return ok, (f"{metric} {scores[metric]:.4f} {'>=' if ok else '<'} champion {champion} "
                    f"{champion_scores[metric]:.4f} - max_regression {margin:g}")
    difference = evidence.differences[metric]
    ok = difference["interval"][0] <= margin
    return ok, (f"{metric}: champion {champion} - this model = "
                f"{with_interval(difference['difference'], difference['interval'], True)}, "
                f"{'not worse beyond noise' if ok else 'worse beyond noise'} (the interval "
                f"{'reaches' if ok else 'lies above'} max_regression {margin:g})")


def _slices_against_champion(criteria, evidence) -> list[tuple[bool, str]]:
    """(False, reason) per gated slice worse beyond noise, else one (True, reason)."""
    found = []
    for s in evidence.slices:
        difference = s.get("champion_difference")
        if not s["gated"] or difference is None:
            continue
        if difference["interval"][0] > criteria.max_regression:
            shown = with_interval(difference["difference"], difference["interval"], True)
            found.append((False, f"slice {s['dimension']}={s['value']} ({s['count']} images): "
                                 f"{criteria.gating_metric} champion - this model = {shown}, "
                                 "worse beyond noise (above max_regression "
                                 f"{criteria.max_regression:g})"))
    gated = sum(1 for s in evidence.slices if s["gated"] and s.get("champion_difference"))
    if not found:
        found.append((True, f"slice gate: none of {gated} slice(s) of at least "
                            f"{criteria.min_slice_size} images is worse than the champion's "
                            "beyond noise"))
    return found
