"""Fitting the jitter: a uniform factor on every duration, seen through the host's delays.

The simulator multiplies a duration W by a factor drawn from U[1 - j, 1 + j]; what a server
reports on a busy host is that plus a wake-up delay that is never negative and does not scale
with W. So each group of equal durations (one prompt length alone, or the cold loads) is
fitted by maximum likelihood as `W u + d`, u uniform with j shared by all groups, d
exponential with mean `a + b W`: a wake-up delay `a` is the same for any W, while a compute
slowed by other work stretches in proportion (`b`). Loads (the last group when `loads`) take
the wake-up delay only.
The lower edge of each group, untouched by delays, pins W (1 - j); the delays take the upper
tail, so a stall reads neither as jitter nor as cost (each W is then its sample's mean less
the fitted mean stall). The jitter is then corrected for the
known shortfall of a sample's lower edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

_FLOOR = 1e-300
CHI2_1DOF_95 = 3.841
LONG_S = 0.05
MAX_JITTER = 0.95
_OPTIONS = {"maxiter": 20000, "maxfev": 20000, "xatol": 1e-7, "fatol": 1e-9}


@dataclass(frozen=True, slots=True)
class JitterFit:
    """The shared jitter, each group's delay-free mean duration (s), the wake-up delay `a`
    (s) and the proportional stall `b` (a fraction of W)."""

    jitter: float
    means_s: tuple[float, ...]
    delay_s: float
    stall: float


def _log_density(x: np.ndarray, width: np.ndarray, jitter: float, delay: np.ndarray) -> np.ndarray:
    """log f(x) for x = width * U[1 - jitter, 1 + jitter] + Exp(mean delay)."""
    low, high = width * (1 - jitter), width * (1 + jitter)
    span = high - low
    below = np.exp(-np.maximum(x - low, 0.0) / delay)
    above = np.exp(-np.maximum(x - high, 0.0) / delay)
    density = np.where(x < low, 0.0, (above - below) / span)
    return np.log(np.maximum(density, _FLOOR))


def fit_groups(groups: Sequence[Sequence[float]], loads: bool = False) -> JitterFit:
    """Fit groups of durations (seconds), each drawn around one mean; groups of fewer than
    three values get their median as mean and do not inform the fit. With `loads`, the last
    group is of cold loads, which stall only by the wake-up delay.

    The jitter is then fitted again on the groups of at least `LONG_S` alone when there are
    any: an event loop's timer noise (a fraction of a millisecond, either way) is no
    exponential delay and would read as jitter beside a duration of a few milliseconds.
    """
    whole = _fit_groups(groups, loads)
    long = [
        i
        for i, (g, m) in enumerate(zip(groups, whole.means_s, strict=True))
        if len(g) >= 3 and m >= LONG_S
    ]
    if not long or len(long) == len([g for g in groups if len(g) >= 3]):
        return whole
    last = len(groups) - 1
    again = _fit_groups([groups[i] for i in long], loads and last in long)
    return JitterFit(again.jitter, whole.means_s, whole.delay_s, whole.stall)


def _fit_groups(groups: Sequence[Sequence[float]], loads: bool) -> JitterFit:
    data = [np.asarray(g, dtype=float) for g in groups]
    used = [i for i, g in enumerate(data) if len(g) >= 3]
    means = [float(np.median(g)) if len(g) else 0.0 for g in data]
    if not used:
        return JitterFit(0.0, tuple(means), 0.0, 0.0)
    fitted = [data[i] for i in used]
    scaled = [not (loads and i == len(data) - 1) for i in used]
    count = len(fitted)
    # All groups in one array (each value with its group's index): one density evaluation
    # per step of the search instead of one per group.
    values = np.concatenate(fitted)
    group = np.repeat(np.arange(count), [len(g) for g in fitted])
    stalls = np.asarray(scaled, dtype=float)[group]

    def loss(theta: np.ndarray, with_stall: bool) -> float:
        jitter = MAX_JITTER / (1 + np.exp(-theta[0]))
        delay = np.exp(theta[1 + count])
        stall = np.exp(theta[2 + count]) if with_stall else 0.0
        width = np.exp(theta[1 : 1 + count])[group]
        mean_delay = delay + stall * width * stalls
        return -float(_log_density(values, width, jitter, mean_delay).sum())

    shortest = max(min(float(g.min()) for g in fitted), 1e-6)

    def best_fit(with_stall: bool) -> Any:
        # The likelihood has a ridge at "no jitter, all delay": start from several places.
        fits = []
        for start_j in (0.03, 0.1, 0.25):
            for start_delay, start_stall in ((0.01, 0.05), (0.05, 0.3)):
                start = [np.log(start_j / (MAX_JITTER - start_j))]
                start += [np.log(g.min() / (1 - start_j)) for g in fitted]
                start += [np.log(shortest * start_delay)]
                start += [np.log(start_stall)] if with_stall else []
                fits.append(
                    minimize(
                        loss, np.array(start), (with_stall,), method="Nelder-Mead", options=_OPTIONS
                    )
                )
        return min(fits, key=lambda fit: float(fit.fun))

    # The proportional stall only where the durations ask for it: a likelihood-ratio test
    # (one more parameter, 5 % level) keeps a quiet backend's model to wake-up delays.
    best, stall = best_fit(False), 0.0
    stalled = best_fit(True)
    if 2 * (float(best.fun) - float(stalled.fun)) > CHI2_1DOF_95:
        best, stall = stalled, float(np.exp(stalled.x[2 + count]))
    # Each group's lower edge sits on its smallest value, above the true edge by 1/(n + 1)
    # of the span for n draws; the upper edge is the delays' to blur. Undo the first.
    sizes = np.array([len(g) for g in fitted], dtype=float)
    unbias = float(np.sum(sizes + 1) / np.sum(sizes))
    jitter = float(min(MAX_JITTER / (1 + np.exp(-best.x[0])) * unbias, MAX_JITTER))
    delay = float(np.exp(best.x[1 + count]))
    for slot, index in enumerate(used):
        # Each mean from its sample's mean less the fitted stalls: the likelihood's own W
        # leans on a few extreme values, the sample mean on all of them.
        grows = 1 + (stall if scaled[slot] else 0.0)
        means[index] = max(float(np.mean(data[index])) - delay, 0.0) / grows
    return JitterFit(jitter, tuple(means), delay, stall)
