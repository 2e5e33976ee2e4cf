"""Choosing the width of every scalable channel group: the uniform rule, and
rounding to a channel multiple that hardware prefers."""

import math

EPSILON = 1e-6  # so that 64 * 0.75 is 48 despite floating point


def uniform_width(width: int, ratio: float) -> int:
    return max(1, int(math.floor(width * ratio + EPSILON)))


def uniform_widths(groups, ratio: float) -> dict:
    return {g.id: uniform_width(g.width, ratio) for g in groups.scalable}


def nearest_multiple(width: int, multiple: int) -> int:
    """The multiple of `multiple` nearest to `width` (halves round up), at least `multiple`."""
    return max(multiple, int(math.floor(width / multiple + 0.5)) * multiple)


def round_widths(widths: dict, multiple: int) -> dict:
    return {gid: nearest_multiple(w, multiple) for gid, w in widths.items()}


def repair_toward_budget(widths: dict, multiple: int, budget: float, param_count) -> dict:
    """Greedily move single groups by one multiple while that brings the
    parameter count nearer the budget (ties: the earlier group)."""
    widths = dict(widths)
    distance = abs(param_count(widths) - budget)
    while True:
        best = None
        for gid in widths:
            for step in (-multiple, multiple):
                if widths[gid] + step < multiple:
                    continue
                trial = {**widths, gid: widths[gid] + step}
                trial_distance = abs(param_count(trial) - budget)
                if trial_distance < distance and (best is None or trial_distance < best[0]):
                    best = (trial_distance, trial)
        if best is None:
            return widths
        distance, widths = best
