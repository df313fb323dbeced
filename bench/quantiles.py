"""Quantiles of raw measurements: the one quantile function behind every number the bench
summarises.

numpy's linear interpolation (`np.percentile`'s default, the same as `statistics.quantiles`
with `method="inclusive"`). Missing (None) and non-finite values are dropped first, so an
error row's undefined TTFT never shifts a quantile; an empty input gives NaN, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

NAN = float("nan")


def finite(values: Iterable[float | None]) -> np.ndarray:
    """The finite values of `values` as a float array (None, NaN and ±inf dropped)."""
    return np.asarray(
        [float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float
    )


def quantile(values: Iterable[float | None], q: float) -> float:
    """The `q`-quantile (0 ≤ q ≤ 1) of the finite `values`, linearly interpolated; NaN when
    there are none."""
    return percentiles(values, (q,))[0]


def percentiles(values: Iterable[float | None], qs: Sequence[float]) -> tuple[float, ...]:
    """Several quantiles of the same values at once (one sort); NaNs when there are none."""
    arr = finite(values)
    if arr.size == 0:
        return tuple(NAN for _ in qs)
    return tuple(float(v) for v in np.percentile(arr, [100 * q for q in qs]))


@dataclass(frozen=True, slots=True)
class Quantiles:
    """A distribution in brief: count, mean, sample standard deviation, p50/p90/p95/p99, max."""

    n: int
    mean: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


def quantiles(values: Iterable[float | None]) -> Quantiles:
    """Summarise the finite `values`; an empty input gives n=0 and NaNs."""
    arr = finite(values)
    if arr.size == 0:
        return Quantiles(0, NAN, NAN, NAN, NAN, NAN, NAN, NAN)
    p50, p90, p95, p99 = percentiles(arr, (0.5, 0.9, 0.95, 0.99))
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return Quantiles(int(arr.size), float(arr.mean()), std, p50, p90, p95, p99, float(arr.max()))
