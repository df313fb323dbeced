"""Measurement: pure functions from timestamps (and Ollama's own durations) to metrics.

Nothing here reads a clock or does I/O, so tests feed exact timings. TTFT waits for the first
chunk with non-empty text, TPOT spreads the time between first and last token over the server's
token count minus one, and the TTFT decomposition joins the client clock with the server's
per-request durations (the report's Formulas section lists each definition).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NS_PER_S = 1_000_000_000
# A row is flagged when client chunks and server tokens disagree by more than this fraction.
TOKEN_MISMATCH_FRACTION = 0.05


def interval_s(start_ns: int | None, end_ns: int | None) -> float | None:
    """Seconds from `start_ns` to `end_ns`, or None when either is missing."""
    if start_ns is None or end_ns is None:
        return None
    return (end_ns - start_ns) / NS_PER_S


def gaps_s(arrivals_ns: Sequence[int]) -> tuple[float, ...]:
    """Every gap between consecutive text-bearing chunks (the ITL / inter-chunk distribution)."""
    return tuple((b - a) / NS_PER_S for a, b in zip(arrivals_ns, arrivals_ns[1:], strict=False))


def tpot_s(first_token_ns: int | None, last_token_ns: int | None, n_tokens: int) -> float | None:
    """Time per output token after the first: (t_last − t_first) / (n − 1); None when n < 2."""
    if first_token_ns is None or last_token_ns is None or n_tokens < 2:
        return None
    return (last_token_ns - first_token_ns) / NS_PER_S / (n_tokens - 1)


def rate_per_s(count: float, seconds: float | None) -> float | None:
    """count / seconds, or None for a missing or non-positive duration."""
    if seconds is None or seconds <= 0:
        return None
    return count / seconds


def tokens_mismatch(n_chunks: int, n_tokens_srv: int | None) -> bool:
    """True when the client's chunk count is more than 5 % away from the server's eval_count."""
    if not n_tokens_srv:
        return False
    return abs(n_chunks - n_tokens_srv) / n_tokens_srv > TOKEN_MISMATCH_FRACTION


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Client TTFT split by Ollama's own durations (seconds); see `decompose`."""

    srv_load_s: float
    srv_wait_s: float
    srv_prefill_s: float
    srv_first_decode_s: float
    srv_ttft_s: float
    transport_ttft_s: float | None


def decompose(
    ttft: float | None,
    *,
    load_duration_ns: int,
    prompt_eval_duration_ns: int,
    eval_duration_ns: int,
    eval_count: int,
    total_duration_ns: int,
) -> Decomposition:
    """Split a TTFT into load (incl. scheduler queue), slot wait + templating, prefill, one decode
    step, and transport (whatever the client saw beyond what the server accounts for).

    srv_wait = total − load − prompt_eval − eval: in Ollama the parallel-slot wait shows up only
    in total_duration. srv_ttft = load + wait + prefill + eval/eval_count.
    """
    load = load_duration_ns / NS_PER_S
    prefill = prompt_eval_duration_ns / NS_PER_S
    wait = max(
        0.0,
        (total_duration_ns - load_duration_ns - prompt_eval_duration_ns - eval_duration_ns)
        / NS_PER_S,
    )
    first = eval_duration_ns / NS_PER_S / eval_count if eval_count > 0 else 0.0
    srv_ttft = load + wait + prefill + first
    transport = None if ttft is None else ttft - srv_ttft
    return Decomposition(load, wait, prefill, first, srv_ttft, transport)


def steady_window(
    starts_s: Sequence[float], ends_s: Sequence[float], warmup_ends_s: Sequence[float]
) -> tuple[float, float]:
    """The steady-state window: from the last warm-up completion (or the first start) to the last
    end. Times are seconds on one clock (wall-clock anchors, so several workers line up)."""
    if not starts_s:
        return (0.0, 0.0)
    lo = max(warmup_ends_s) if warmup_ends_s else min(starts_s)
    hi = max(ends_s) if ends_s else lo
    return (lo, max(lo, hi))


def count_in_window(times_s: Sequence[float] | np.ndarray, lo: float, hi: float) -> int:
    """How many event times fall in [lo, hi] (tokens counted by arrival, not by request)."""
    arr = np.asarray(times_s, dtype=float)
    return int(((arr >= lo) & (arr <= hi)).sum())


def peak_per_s(times_s: Sequence[float] | np.ndarray, lo: float, hi: float) -> float:
    """The largest count in any whole 1-second bucket of [lo, hi] (0 when the window is < 1 s)."""
    buckets = int(math.floor(hi - lo))
    if buckets < 1:
        return 0.0
    arr = np.asarray(times_s, dtype=float)
    arr = arr[(arr >= lo) & (arr < lo + buckets)]
    counts = np.bincount(((arr - lo) // 1).astype(int), minlength=buckets)
    return float(counts.max())


def mean_concurrency(intervals_s: Sequence[tuple[float, float]], lo: float, hi: float) -> float:
    """Time-weighted mean number of requests in flight over [lo, hi] (sweep line)."""
    if hi <= lo:
        return 0.0
    busy = 0.0
    for start, end in intervals_s:
        overlap = min(end, hi) - max(start, lo)
        if overlap > 0:
            busy += overlap
    return busy / (hi - lo)


def is_good(
    ttft: float | None, tpot: float | None, slo_ttft_s: float | None, slo_tpot_s: float | None
) -> bool:
    """Whether one successful request meets the SLOs (an SLO that is None always passes;
    a TPOT that is undefined — one token — passes the TPOT SLO)."""
    if slo_ttft_s is not None and (ttft is None or ttft > slo_ttft_s):
        return False
    return not (slo_tpot_s is not None and tpot is not None and tpot > slo_tpot_s)
