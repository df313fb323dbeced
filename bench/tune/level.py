"""A level: one user count on one NUM_PARALLEL candidate, judged against the SLOs.

Only measured answers count (each user's warm-up answer is excluded, as in the bench). A level
*clearly fails* once the lower bound of a p95's 95% CI is above its SLO, and *clearly passes*
once it has `min_requests` answers and both upper bounds are within their SLOs; either stops
its measurement early. A level still undecided when its time is up is judged by the point
estimates and marked unclear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.record import ERROR_STATUSES, Status
from bench.summary import summarize_cell, with_times
from bench.tune.bootstrap import Estimate, Resampled, resample, with_failures

# A level can clearly fail on fewer answers than it needs to clearly pass: a handful of answers
# far over the SLO is enough evidence, while "within" needs the p95 itself to be measured.
MIN_TO_FAIL = 8
MIN_WINDOW_S = 2.0
_ERRORS = {str(s) for s in ERROR_STATUSES}


@dataclass(frozen=True, slots=True)
class Slos:
    """The SLOs, seconds."""

    ttft_s: float
    tpot_s: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """Pass or fail, whether the CIs decided it, and why, in words."""

    passed: bool
    clear: bool
    why: str


@dataclass(frozen=True, slots=True)
class Level:
    """Everything measured at one user count of one candidate."""

    num_parallel: int
    users: int
    n_ok: int
    n_failed: int
    ttft_p95: Estimate
    tpot_p95: Estimate
    verdict: Verdict
    elapsed_s: float
    agg_tok_s: float
    per_user_tok_s: float
    goodput_req_s: float
    good_fraction: float
    slos: Slos
    passes: np.ndarray = field(repr=False, compare=False)

    @property
    def ratios(self) -> tuple[float, float]:
        """TTFT p95 / SLO and TPOT p95 / SLO, on the verdict's side of 1: a level that failed
        for want of answers (or by its CIs alone) gets infinite ratios, nothing to go on."""
        ratios = (self.ttft_p95.value / self.slos.ttft_s, self.tpot_p95.value / self.slos.tpot_s)
        if self.verdict.passed:
            return ratios
        if any(math.isnan(r) for r in ratios) or max(ratios) <= 1:
            return (math.inf, math.inf)
        return ratios

    def row(self) -> dict[str, Any]:
        """The level as one flat table row (seconds, tokens/s, requests/s)."""
        return {
            "num_parallel": self.num_parallel,
            "users": self.users,
            "passed": self.verdict.passed,
            "clear": self.verdict.clear,
            "ok": self.n_ok,
            "failed": self.n_failed,
            "ttft_p95_s": self.ttft_p95.value,
            "ttft_p95_lo_s": self.ttft_p95.lo,
            "ttft_p95_hi_s": self.ttft_p95.hi,
            "tpot_p95_s": self.tpot_p95.value,
            "tpot_p95_lo_s": self.tpot_p95.lo,
            "tpot_p95_hi_s": self.tpot_p95.hi,
            "agg_tok_s": self.agg_tok_s,
            "per_user_tok_s": self.per_user_tok_s,
            "goodput_req_s": self.goodput_req_s,
            "good_fraction": self.good_fraction,
            "elapsed_s": self.elapsed_s,
            "why": self.verdict.why,
        }


def completed(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The measured ok answers of a level, and how many measured requests failed."""
    measured = rows[rows["phase"] == "measure"]
    ok = measured[measured["status"] == str(Status.OK)]
    return ok, int(measured["status"].isin(_ERRORS).sum())


def resample_rows(rows: pd.DataFrame, slos: Slos, rng: np.random.Generator) -> Resampled:
    """Bootstrap the p95s of a level's measured rows (failures count as violations)."""
    ok, failed = completed(rows)
    ttft = with_failures(ok["ttft_s"].to_numpy(dtype=float), failed)
    tpot = with_failures(ok["tpot_s"].to_numpy(dtype=float, na_value=np.nan), failed)
    return resample(ttft, tpot, slos.ttft_s, slos.tpot_s, rng)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


def _over(name: str, est: Estimate, slo: float) -> str:
    return f"{name} p95 {_ms(est.value)} (CI {_ms(est.lo)}-{_ms(est.hi)}) > {_ms(slo)}"


def judge_early(res: Resampled, slos: Slos, min_requests: int) -> Verdict | None:
    """The level's verdict once its CIs decide it; None while it is still undecided."""
    if res.n >= MIN_TO_FAIL:
        if res.ttft.lo > slos.ttft_s:
            return Verdict(False, True, _over("TTFT", res.ttft, slos.ttft_s))
        if res.tpot.lo > slos.tpot_s:
            return Verdict(False, True, _over("TPOT", res.tpot, slos.tpot_s))
    within = res.ttft.hi <= slos.ttft_s and res.tpot.hi <= slos.tpot_s
    if res.n >= min_requests and within:
        return Verdict(True, True, "both p95s and their CIs within the SLOs")
    return None


def judge_final(res: Resampled, slos: Slos, min_requests: int) -> Verdict:
    """The verdict when the level's time is up: the CIs' if they decide, else the estimates'."""
    early = judge_early(res, slos, min_requests)
    if early is not None:
        return early
    if res.n == 0:
        return Verdict(False, False, "no answer completed within the level's time")
    if res.n < MIN_TO_FAIL:
        # A capacity claim needs evidence: a p95 of a handful of answers is not one.
        return Verdict(False, False, f"only {res.n} answers in the level's time: too few")
    if res.ttft.value > slos.ttft_s:
        return Verdict(False, False, _over("TTFT", res.ttft, slos.ttft_s) + " (unclear)")
    if res.tpot.value > slos.tpot_s:
        return Verdict(False, False, _over("TPOT", res.tpot, slos.tpot_s) + " (unclear)")
    return Verdict(True, False, f"p95s within the SLOs on {res.n} answers (CI not yet clear)")


def build_level(
    num_parallel: int,
    users: int,
    rows: pd.DataFrame,
    judged: pd.DataFrame,
    slos: Slos,
    min_requests: int,
    elapsed_s: float,
    rng: np.random.Generator,
) -> Level:
    """The final record of one level: its verdict and p95s from the `judged` rows (those that
    had ended when it was decided), its throughput and goodput from all of its `rows` (the
    answers still streaming then carry tokens too)."""
    res = resample_rows(judged, slos, rng)
    verdict = judge_final(res, slos, min_requests)
    ok, failed = completed(judged)
    cell = summarize_cell(with_times(rows), slos.ttft_s, slos.tpot_s) if len(rows) else {}

    def num(key: str) -> float:
        value = cell.get(key)
        # Rates over a window of a moment (a level cut short) are noise, not throughput.
        if value is None or float(cell.get("window_s") or 0.0) < MIN_WINDOW_S:
            return float("nan")
        return float(value)

    return Level(
        num_parallel=num_parallel,
        users=users,
        n_ok=len(ok),
        n_failed=failed,
        ttft_p95=res.ttft,
        tpot_p95=res.tpot,
        verdict=verdict,
        elapsed_s=elapsed_s,
        agg_tok_s=num("agg_tok_s"),
        per_user_tok_s=num("stream_tok_s_p50"),
        goodput_req_s=num("goodput_req_s"),
        good_fraction=num("good_fraction"),
        slos=slos,
        passes=res.passes,
    )
