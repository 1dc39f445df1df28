"""The blessing decision behind the conditional push, as TFX's Evaluator makes it.

Value thresholds: a minimum per gating metric and a maximum ECE (0 disables one). Change
threshold: the current champion, scored on the same images, may not beat the challenger on
`gating_metric` by more than `max_regression`. No champion yet: value thresholds alone. No
threshold configured at all: not blessed, so nothing is ever blessed by accident.
"""

import dataclasses

from admod.options import BlessingOptions


@dataclasses.dataclass
class Decision:
    blessed: bool
    reasons: list[str]


def decide(scores: dict, criteria: BlessingOptions, champion_scores: dict | None = None,
           champion: str | None = None, refusals: list[str] = ()) -> Decision:
    """Every comparison made, with both values, in `reasons`; any of `refusals` (what the
    evaluation could not do) refuses the blessing whatever the figures."""
    minimums = {name: value for name, value in criteria.minimums.items() if value > 0}
    maximums = {name: value for name, value in criteria.maximums.items() if value > 0}
    if not minimums and not maximums and champion_scores is None:
        return Decision(False, ["no threshold is configured and there is no champion: "
                                "a model is never blessed by accident"])
    reasons = [f"refused: {why}" for why in refusals]
    blessed = not refusals
    for name, minimum in sorted(minimums.items()):
        ok = scores[name] >= minimum
        blessed &= ok
        reasons.append(f"{name} {scores[name]:.4f} {'>=' if ok else '<'} minimum {minimum:.4f}")
    for name, maximum in sorted(maximums.items()):
        ok = scores[name] <= maximum
        blessed &= ok
        reasons.append(f"{name} {scores[name]:.4f} {'<=' if ok else '>'} maximum {maximum:.4f}")
    if champion_scores is None:
        reasons.append("no champion yet: value thresholds alone")
    else:
        metric = criteria.gating_metric
        floor = champion_scores[metric] - criteria.max_regression
        ok = scores[metric] >= floor
        blessed &= ok
        reasons.append(f"{metric} {scores[metric]:.4f} {'>=' if ok else '<'} champion {champion} "
                       f"{champion_scores[metric]:.4f} - max_regression "
                       f"{criteria.max_regression:g}")
    return Decision(blessed, reasons)
