"""A short run's verdict: when no answer completed inside a duration-bound run, say what
happened (how long the first answer takes) and how long a run must be, instead of blaming
the load generator for the missing concurrency.

No answer finished, so the first answer's length is projected from the tokens it had
streamed when the run stopped, up to `max_tokens` (the bench's prompt sets run to
`num_predict`). A run should hold each stream's warm-up answers and two measured ones.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.record import ERROR_STATUSES, Status

MEASURED_PER_STREAM = 2
_ERRORS = {str(s) for s in ERROR_STATUSES}


def _num(value: object) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)  # type: ignore[arg-type]


def first_answer_s(first: pd.Series, max_tokens: int) -> tuple[float, str] | None:
    """How long the first (earliest sent, unfinished) answer would take in all, projected from
    what it had streamed, and how; None when it had not streamed a token yet."""
    ttft, last = _num(first["ttft_s"]), _num(first["last_token_s"])
    chunks = int(first["n_chunks"] or 0)
    if ttft is None or chunks == 0:
        return None
    per_token = (last - ttft) / (chunks - 1) if last is not None and chunks > 1 else ttft
    projected = ttft + (max_tokens - 1) * per_token
    how = f"projected: {chunks} of its {max_tokens} tokens in {last or ttft:.1f} s"
    return projected, how


def verdict(cell: pd.DataFrame, duration_s: float | None, max_tokens: int, warmup: int) -> str:
    """The verdict for one target × streams run, or '' when an answer completed in it (or it
    was bound by a request count, or its requests failed: errors are reported as such)."""
    if duration_s is None or cell.empty:
        return ""
    if (cell["status"] == str(Status.OK)).any() or cell["status"].isin(_ERRORS).any():
        return ""
    window = f"no answer completed within {duration_s:.0f} s"
    first = cell.sort_values("start_unix_ns").iloc[0]
    known = first_answer_s(first, max_tokens)
    if known is None:
        waited = float(first["e2e_s"])
        at_least = math.ceil(2 * max(waited, duration_s))
        return (
            f"{window}; the first answer had no token after {waited:.1f} s (the model may be "
            f"loading): run at least {at_least} s"
        )
    took, how = known
    at_least = math.ceil(took * (warmup + MEASURED_PER_STREAM))
    return f"{window}; the first answer took {took:.0f} s ({how}): run at least {at_least} s"
