"""Fitting how much concurrent prompt evaluations share one compute (`prefill_shared`).

In a burst, processor sharing (`farm.sim.sharing`) gives each of the `k` evaluations in
progress the rate `1 / (1 + s (k - 1))`. The requests of a burst reach the server a few ms
apart (the client sends them one after another) and their works differ by the jitter, so the
expected mean evaluation time for a given `s` is computed by replaying each burst: its
measured server-side start offsets, its prompts' mean works from the lone fit, works drawn
with the fitted jitter (seeded). `s` is the value whose replays match the bursts best.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from bench.calibrate.jitter_fit import JitterFit
from bench.calibrate.prefill import PrefillLine
from bench.calibrate.probe import NS_PER_S, Sample

MAX_SHARED = 4.0
_DRAWS = 256
_DONE = 1e-12


def replay(
    shared: float,
    starts_s: Sequence[float],
    works_s: Sequence[float],
    jitter: float,
    seed: int = 0,
    with_decode: float = 0.0,
) -> float:
    """Mean evaluation time (s) of prompts arriving at `starts_s` with mean works `works_s`,
    sharing one compute, over seeded draws of the jitter; a prompt done starts decoding,
    which slows those still evaluated by `with_decode` each."""
    rng = np.random.default_rng(seed)
    count = len(starts_s)
    start = np.asarray(starts_s, dtype=float) - min(starts_s)
    left = np.asarray(works_s, dtype=float) * rng.uniform(1 - jitter, 1 + jitter, (_DRAWS, count))
    now = np.zeros(_DRAWS)
    finish = np.full((_DRAWS, count), np.nan)
    for _ in range(2 * count + 1):
        arrived = start[None, :] <= now[:, None] + _DONE
        active = arrived & np.isnan(finish)
        if not active.any() and np.isnan(finish).sum() == 0:
            break
        k = active.sum(axis=1)
        decoding = (~np.isnan(finish)).sum(axis=1)
        rate = 1 / (1 + shared * np.maximum(k - 1, 0) + with_decode * decoding)
        to_finish = np.where(active, left, np.inf).min(axis=1) / rate
        upcoming = np.where(start[None, :] > now[:, None] + _DONE, start[None, :], np.inf)
        to_arrive = upcoming.min(axis=1) - now
        step = np.minimum(to_finish, to_arrive)
        step = np.where(np.isfinite(step), step, 0.0)
        left = np.where(active, left - (step * rate)[:, None], left)
        now = now + step
        done = active & (left <= _DONE)
        finish = np.where(done, now[:, None], finish)
    return float(np.nanmean(finish - start[None, :]))


def fit_shared(
    bursts: Sequence[Sample], line: PrefillLine, whole: JitterFit, with_decode: float = 0.0
) -> tuple[float, dict[str, float]]:
    """(`prefill_shared`, residual per concurrency level) from the bursts above one slot;
    each prompt's work is its lone cost plus its mean stall (`whole`)."""
    jitter = whole.jitter
    by_burst: dict[int, list[Sample]] = defaultdict(list)
    for sample in bursts:
        if sample.concurrency > 1:
            by_burst[sample.burst].append(sample)
    if not by_burst:
        return 0.0, {}
    cases = [
        (
            [s.server_start_s for s in group],
            [line.at(s.prompt_eval_count) * (1 + whole.stall) + whole.delay_s for s in group],
            float(np.mean([s.prompt_eval_duration_ns / NS_PER_S for s in group])),
            group[0].concurrency,
        )
        for group in by_burst.values()
    ]

    def loss(shared: float) -> float:
        return sum(
            ((replay(shared, starts, works, jitter, 0, with_decode) - measured) / measured) ** 2
            for starts, works, measured, _ in cases
        )

    shared = float(minimize_scalar(loss, bounds=(0.0, MAX_SHARED), method="bounded").x)
    errors: dict[int, list[float]] = defaultdict(list)
    for starts, works, measured, level in cases:
        predicted = replay(shared, starts, works, jitter, 0, with_decode)
        errors[level].append((predicted - measured) / measured)
    return shared, {f"prefill_c{c}": float(np.mean(e)) for c, e in sorted(errors.items())}
