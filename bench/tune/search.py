"""The bracketing search over user counts for one NUM_PARALLEL candidate, and its capacity.

Pure: it sees each measured user count's p95 / SLO ratios (TTFT and TPOT; a level passed
when both are at most 1) and names the next count to measure. It starts at
NUM_PARALLEL users (every user has a slot: the likeliest knee), or at a twin's answer when one
is being confirmed, then steps to one more (a closed loop past the slots makes every answer
wait, so this is often the first failure). Above that it extrapolates each ratio's growth to
where the first crosses 1 (at most doubling), and once a failing count brackets the answer it
interpolates between the two sides (regula falsi, as an SLO root-finder does), until a
passing and a failing count are adjacent. Capacity is the largest measured count that passes
with every smaller measured count passing too; its 95% CI comes from the bootstrap replicates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bench.tune.bootstrap import capacity, interval

Ratios = tuple[float, ...]


def _crossing(u1: int, r1: Ratios, u2: int, r2: Ratios) -> float | None:
    """Where the first of the ratios reaches 1, each on the line through its two points
    (None when none of them rises)."""
    found = []
    for m1, m2 in zip(r1, r2, strict=True):
        if math.isfinite(m1) and math.isfinite(m2) and m2 > m1 and u1 != u2:
            found.append(u2 + (1 - m2) * (u2 - u1) / (m2 - m1))
    return min(found) if found else None


def _inside(guess: float | None, lo: int, hi: int) -> int:
    """A count strictly between `lo` and `hi`: the guess rounded, else the midpoint."""
    mid = (lo + hi) // 2
    if guess is None or not math.isfinite(guess):
        return mid
    return min(hi - 1, max(lo + 1, round(guess)))


def within(ratios: Ratios) -> bool:
    """A level passed when every p95 / SLO ratio is at most 1."""
    return max(ratios) <= 1


def next_users(
    levels: Mapping[int, Ratios], num_parallel: int, max_users: int, start: int | None = None
) -> int | None:
    """The next user count to measure, or None when the bracket is closed (or at a limit).

    `levels` maps each measured count to its p95 / SLO ratios (TTFT, TPOT)."""
    first = max(1, min(num_parallel if start is None else start, max_users))
    if not levels:
        return first
    fails = [u for u, r in levels.items() if not within(r)]
    hi = min(fails) if fails else None
    below = sorted(u for u, r in levels.items() if within(r) and (hi is None or u < hi))
    if hi is None:
        lo = below[-1]
        if lo >= max_users:
            return None
        if lo == first and lo + 1 not in levels:
            return min(lo + 1, max_users)
        ahead = None
        if len(below) >= 2:
            ahead = _crossing(below[-2], levels[below[-2]], lo, levels[lo])
        return min(max_users, 2 * lo, max(lo + 1, math.floor(ahead) if ahead else 2 * lo))
    lo = below[-1] if below else 0
    if hi - lo <= 1:
        return None
    worst = max(levels[hi])
    if lo == 0:
        guess = hi / worst if math.isfinite(worst) else None
    else:
        guess = _crossing(lo, levels[lo], hi, levels[hi])
    nxt = _inside(guess, lo, hi)
    # Never re-measure a count: a non-monotone result leaves the bracket as it is.
    return None if nxt in levels else nxt


@dataclass(frozen=True, slots=True)
class Capacity:
    """A candidate's capacity in users with its 95% CI; `at_least` when max_users passed."""

    users: int
    lo: int
    hi: int
    at_least: bool


def capacity_of(
    passes: Mapping[int, np.ndarray], passed: Mapping[int, bool], max_users: int
) -> Capacity:
    """Capacity from the levels' verdicts (point) and bootstrap replicates (interval)."""
    point = int(capacity({u: np.asarray([ok]) for u, ok in passed.items()})[0])
    lo, hi = interval(capacity(dict(passes))) if passes else (0, 0)
    # The CI describes sampling noise around the verdicts; it always contains the estimate.
    lo, hi = min(lo, point), max(hi, point)
    # Without a failing count just above it (max_users reached, or the search cut short),
    # the capacity is a lower bound.
    closed = passed.get(point + 1) is False or (point == 0 and passed.get(1) is False)
    return Capacity(point, lo, hi, at_least=not closed)
