"""The time budget: how long the next level may run, and the ETA the progress bar shows.

Pure arithmetic on elapsed times. The budget is shared out evenly over the levels still
expected (a bracketing search takes about four per candidate), after the expected restarts
and a reserve for writing the report, so a tune ends inside `--budget` with every candidate
measured, each level shorter if need be, rather than stopping half-way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVELS_PER_CANDIDATE = 4
# Below this a level cannot start locust, warm each user and measure anything.
MIN_LEVEL_S = 6.0
REPORT_RESERVE_S = 15.0


@dataclass(frozen=True, slots=True)
class Budget:
    """The whole tune's time, seconds."""

    total_s: float

    @property
    def reserve_s(self) -> float:
        """Kept for the report and plots."""
        return min(REPORT_RESERVE_S, 0.1 * self.total_s)

    def left_s(self, elapsed_s: float) -> float:
        """Time left for measuring."""
        return self.total_s - self.reserve_s - elapsed_s

    def level_s(
        self, elapsed_s: float, levels_left: int, starts_left: int, start_s: float, cap_s: float
    ) -> float:
        """How long the next level may run: an even share of what is left, at most `cap_s`;
        0 when not even a short level fits."""
        share = (self.left_s(elapsed_s) - starts_left * start_s) / max(1, levels_left)
        seconds = min(cap_s, share, self.left_s(elapsed_s))
        return seconds if seconds >= MIN_LEVEL_S else 0.0

    def eta_s(
        self, elapsed_s: float, levels_left: int, starts_left: int, level_s: float, start_s: float
    ) -> float:
        """Expected time to the end, never past the budget."""
        expected = levels_left * level_s + starts_left * start_s + self.reserve_s
        return max(0.0, min(expected, self.total_s - elapsed_s))


def levels_left(done_here: int, candidates_after: int, seen: Sequence[int] = ()) -> int:
    """Levels still expected: the rest of this candidate's search plus the later candidates'
    (as many per candidate as the finished ones took, at least LEVELS_PER_CANDIDATE)."""
    per = max(LEVELS_PER_CANDIDATE, math.ceil(sum(seen) / len(seen)) if seen else 0)
    return max(1, per - done_here) + per * candidates_after
