"""What a tune found: per candidate its levels and capacity, the choice, and the headline.

The chosen NUM_PARALLEL is the candidate serving the most users within the SLOs; a tie goes
to the smaller setting, which reserves less memory (Ollama sizes its KV cache per slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.tune.level import Level
from bench.tune.search import Capacity, capacity_of
from bench.tune.settings import TuneSettings


def seconds_text(seconds: float) -> str:
    """`2 s`, `100 ms`, `1.5 s`: an SLO as a person writes it."""
    if seconds < 1:
        return f"{seconds * 1000:.4g} ms"
    return f"{seconds:.4g} s"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One NUM_PARALLEL setting: its measured levels (in order) and its capacity."""

    num_parallel: int
    levels: tuple[Level, ...]
    capacity: Capacity
    complete: bool

    @classmethod
    def of(
        cls, num_parallel: int, levels: tuple[Level, ...], max_users: int, complete: bool
    ) -> Candidate:
        """The candidate with its capacity computed from `levels`."""
        passed = {lv.users: lv.verdict.passed for lv in levels}
        passes = {lv.users: lv.passes for lv in levels}
        return cls(num_parallel, levels, capacity_of(passes, passed, max_users), complete)

    def at(self, users: int) -> Level | None:
        """The level measured at `users`, if any."""
        return next((lv for lv in self.levels if lv.users == users), None)

    @property
    def unmeetable(self) -> str:
        """A one-line explanation when even one user fails the SLOs here, else ''."""
        one = self.at(1)
        if one is None or one.verdict.passed or self.capacity.users:
            return ""
        slos = one.slos
        if not (one.ttft_p95.value > slos.ttft_s or one.tpot_p95.value > slos.tpot_s):
            return ""  # failed for want of answers, not by its latencies
        return (
            f"the SLOs cannot be met even by one user: at NUM_PARALLEL={self.num_parallel} one "
            f"user got TTFT p95 {seconds_text(one.ttft_p95.value)} and TPOT p95 "
            f"{seconds_text(one.tpot_p95.value)}; loosen --slo-ttft-p95/--slo-tpot-p95"
        )


@dataclass(frozen=True, slots=True)
class TuneResult:
    """A finished (or stopped) tune: where its files are and what it measured."""

    out: Path
    config: TuneSettings
    candidates: tuple[Candidate, ...]
    stopped: str = ""
    # With --twin: the twin's own tune, whose best candidates this one confirmed.
    twin: TuneResult | None = None

    @property
    def best(self) -> Candidate | None:
        """The chosen candidate (most users; the smaller setting on a tie), None if none serves
        a single user."""
        serving = [c for c in self.candidates if c.capacity.users > 0]
        if not serving:
            return None
        return max(serving, key=lambda c: (c.capacity.users, -c.num_parallel))

    def slo_text(self) -> str:
        """`TTFT p95 <= 2 s and TPOT p95 <= 100 ms`."""
        return (
            f"TTFT p95 <= {seconds_text(self.config.slo_ttft_p95)} and "
            f"TPOT p95 <= {seconds_text(self.config.slo_tpot_p95)}"
        )

    def line(self, cand: Candidate) -> str:
        """`NUM_PARALLEL=8 serves 14 users (95% CI 13-15) within …; 410 tok/s in all`."""
        cap = cand.capacity
        users = f"{'at least ' if cap.at_least else ''}{cap.users} user{'s' * (cap.users != 1)}"
        level = cand.at(cap.users)
        tok = f"; {level.agg_tok_s:.0f} tok/s in all" if level and level.agg_tok_s > 0 else ""
        return (
            f"NUM_PARALLEL={cand.num_parallel} serves {users} (95% CI {cap.lo}-{cap.hi}) "
            f"within {self.slo_text()}{tok}"
        )

    @property
    def headline(self) -> str:
        """The answer in one line."""
        best = self.best
        if best is None:
            return f"no NUM_PARALLEL tried serves one user within {self.slo_text()}"
        return self.line(best)
