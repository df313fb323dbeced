"""Bootstrap confidence intervals for a level's p95 latencies and for a candidate's capacity.

Requests are resampled with replacement, jointly (one resample gives both the TTFT and the TPOT
p95, so a replicate passes only when both SLOs hold on the same requests). A failed request
counts as an infinitely slow one: it violates every SLO and cannot make a level look good.
Percentile intervals; the generator is seeded, so a report can be recomputed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REPLICATES = 1000
LEVEL = 0.95
Q = 0.95
# Failures stand in as this many seconds: finite, so that interpolating between a real latency
# and a failure stays a number (numpy turns inf - inf into NaN).
FAILED_S = 1e9


@dataclass(frozen=True, slots=True)
class Estimate:
    """A p95 (seconds) with its bootstrap 95% interval; NaN when nothing was measured."""

    value: float
    lo: float
    hi: float


@dataclass(frozen=True, slots=True)
class Resampled:
    """The p95s of one level's requests and the pass/fail of each bootstrap replicate."""

    n: int
    ttft: Estimate
    tpot: Estimate
    passes: np.ndarray  # bool per replicate: both p95s within their SLOs


def with_failures(values: np.ndarray, failed: int) -> np.ndarray:
    """`values` plus one FAILED_S entry per failed request."""
    return np.concatenate([values.astype(float), np.full(failed, FAILED_S)])


def _estimate(point: float, replicates: np.ndarray) -> Estimate:
    tail = (1 - LEVEL) / 2
    lo, hi = np.quantile(replicates, [tail, 1 - tail])
    return Estimate(point, float(lo), float(hi))


def _p95(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.asarray(np.quantile(values, Q, axis=axis))


def resample(
    ttft_s: np.ndarray,
    tpot_s: np.ndarray,
    slo_ttft_s: float,
    slo_tpot_s: float,
    rng: np.random.Generator,
) -> Resampled:
    """Bootstrap the TTFT and TPOT p95 of one level's requests (equal-length arrays, failures
    already added by `with_failures`). A one-token answer has no time per output token and is
    given TPOT 0 (NaN in `tpot_s`): it cannot violate the TPOT SLO."""
    n = int(ttft_s.size)
    if n == 0:
        nan = Estimate(float("nan"), float("nan"), float("nan"))
        return Resampled(0, nan, nan, np.zeros(REPLICATES, dtype=bool))
    tpot_s = np.nan_to_num(tpot_s, nan=0.0)
    picks = rng.integers(0, n, size=(REPLICATES, n))
    ttft_b = _p95(ttft_s[picks], axis=1)
    tpot_b = _p95(tpot_s[picks], axis=1)
    passes = (ttft_b <= slo_ttft_s) & (tpot_b <= slo_tpot_s)
    ttft = _estimate(float(_p95(ttft_s)), ttft_b)
    tpot = _estimate(float(_p95(tpot_s)), tpot_b)
    return Resampled(n, ttft, tpot, passes)


def capacity(levels: dict[int, np.ndarray]) -> np.ndarray:
    """Capacity per replicate: the largest measured user count whose level and every smaller
    measured level pass (0 when the smallest fails). `levels` maps users to each replicate's
    pass/fail; every array has the same length. With one entry per replicate (a length-1
    array), this is the point estimate."""
    users = sorted(levels)
    if not users:
        return np.zeros(REPLICATES, dtype=int)
    size = len(levels[users[0]])
    out = np.zeros(size, dtype=int)
    still = np.ones(size, dtype=bool)
    for u in users:
        still &= levels[u]
        out = np.where(still, u, out)
    return out


def interval(values: np.ndarray) -> tuple[int, int]:
    """The 95% percentile interval of integer replicates, as values that occurred."""
    tail = (1 - LEVEL) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")
    return int(lo), int(hi)
