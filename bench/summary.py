"""Summaries: from raw rows (a pandas DataFrame of `RequestRecord`s) to the report's tables.

Quantiles come from the raw rows only (never from locust's rounded histograms). Errors are
excluded from latency quantiles but counted, and they stay in goodput's denominator; warm-up rows
are excluded from everything but the error table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench import harness, measure, short_run
from bench.quantiles import quantile, quantiles
from bench.record import ERROR_STATUSES, Status
from bench.settings import DEFAULT_DURATION_S

GROUP = ["target", "streams"]
_ERRORS = [str(s) for s in ERROR_STATUSES]


def with_times(rows: pd.DataFrame) -> pd.DataFrame:
    """Add wall-clock `start_s`/`end_s` columns (seconds since the epoch) to the rows."""
    out = rows.copy()
    out["start_s"] = out["start_unix_ns"] / 1e9
    out["end_s"] = out["start_s"] + out["e2e_s"]
    return out


def token_times(rows: pd.DataFrame) -> np.ndarray:
    """Wall-clock arrival time of every text-bearing chunk of `rows` (seconds since epoch)."""
    times: list[float] = []
    for start, ttft, gaps in zip(
        rows["start_s"], rows["ttft_s"], rows["token_gaps_s"], strict=True
    ):
        if ttft is None or pd.isna(ttft):
            continue
        first = start + ttft
        times.append(first)
        if gaps is not None and len(gaps):
            times.extend(first + np.cumsum(np.asarray(gaps, dtype=float)))
    return np.asarray(times, dtype=float)


def _q(prefix: str, values: Any, unit_scale: float = 1.0) -> dict[str, float]:
    q = quantiles(float(v) * unit_scale for v in values if v is not None and not pd.isna(v))
    return {
        f"{prefix}_p50": q.p50,
        f"{prefix}_p90": q.p90,
        f"{prefix}_p99": q.p99,
        f"{prefix}_mean": q.mean,
    }


def summarize_cell(
    cell: pd.DataFrame, slo_ttft_s: float | None, slo_tpot_s: float | None
) -> dict[str, Any]:
    """One summary row for one target × streams cell (rows already carry start_s/end_s)."""
    warm = cell[cell["phase"] == "warmup"]
    meas = cell[cell["phase"] == "measure"]
    lo, hi = measure.steady_window(list(cell["start_s"]), list(cell["end_s"]), list(warm["end_s"]))
    window = hi - lo
    ok = meas[meas["status"] == str(Status.OK)]
    failed = meas[meas["status"].isin(_ERRORS)]
    gaps = [g for gs in ok["token_gaps_s"] if gs is not None for g in gs]
    good = sum(
        measure.is_good(t, p, slo_ttft_s, slo_tpot_s)
        for t, p in zip(ok["ttft_s"], ok["tpot_s"], strict=True)
    )
    times = token_times(cell)
    intervals = list(zip(cell["start_s"], cell["end_s"], strict=True))
    ok_in_window = ok[(ok["end_s"] >= lo) & (ok["end_s"] <= hi)]
    row: dict[str, Any] = {
        "requests": len(meas),
        "ok": len(ok),
        "errors": len(failed),
        "cut": int((meas["status"] == str(Status.CUT)).sum()),
        "incomplete": int((meas["status"] == str(Status.INCOMPLETE)).sum()),
        "warmup_excluded": len(warm),
        "window_s": window,
        "achieved_streams": measure.mean_concurrency(intervals, lo, hi),
        "req_per_s": measure.rate_per_s(len(ok_in_window), window),
        "agg_tok_s": measure.rate_per_s(measure.count_in_window(times, lo, hi), window),
        "peak_tok_s": measure.peak_per_s(times, lo, hi),
    }
    row.update(_q("ttft_ms", ok["ttft_s"], 1000))
    row.update(_q("itl_ms", gaps, 1000))
    row.update(_q("tpot_ms", ok["tpot_s"], 1000))
    row.update(_q("e2e_s", ok["e2e_s"]))
    row.update(_q("stream_tok_s", ok["stream_tok_s"]))
    row["srv_decode_tok_s_p50"] = quantile(ok["srv_decode_tok_s"], 0.5)
    row["srv_ttft_ms_p50"] = quantile(ok["srv_ttft_s"] * 1000, 0.5)
    row["first_token_lag_ms_p50"] = quantile(ok["first_token_lag_s"] * 1000, 0.5)
    row["send_lag_ms_p99"] = quantile(meas["send_lag_s"] * 1000, 0.99)
    row["icg_max_ms"] = (
        float(ok["icg_max_s"].max() * 1000) if ok["icg_max_s"].notna().any() else float("nan")
    )
    row["token_mismatch"] = int(ok["token_mismatch"].sum())
    row["tokens_per_chunk"] = float(ok["tokens_per_chunk"].mean()) if len(ok) else float("nan")
    row["goodput_req_s"] = measure.rate_per_s(good, window)
    denom = len(ok) + len(failed)
    row["good_fraction"] = good / denom if denom else float("nan")
    return row


def summarize(
    rows: pd.DataFrame, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None
) -> pd.DataFrame:
    """The main summary: one row per target × streams."""
    timed = with_times(rows)
    records: list[dict[str, Any]] = []
    for (target, streams), cell in timed.groupby(GROUP, sort=True):
        records.append(
            {"target": target, "streams": streams, **summarize_cell(cell, slo_ttft_s, slo_tpot_s)}
        )
    return pd.DataFrame.from_records(records)


DECOMPOSITION = (
    "srv_load_s",
    "srv_wait_s",
    "srv_prefill_s",
    "srv_first_decode_s",
    "transport_ttft_s",
)


def decomposition(rows: pd.DataFrame) -> pd.DataFrame:
    """TTFT split per target × streams: median (ms) of each part, from ok measured rows with
    Ollama timings. The parts sum to the median TTFT only approximately (medians don't add)."""
    ok = rows[(rows["status"] == str(Status.OK)) & (rows["phase"] == "measure")].copy()
    ok = ok[ok["total_duration_ns"].notna()]
    if ok.empty:
        return pd.DataFrame(
            columns=[*GROUP, "ttft_ms", *[c.replace("_s", "_ms") for c in DECOMPOSITION]]
        )
    ok["srv_load_s"] = ok["load_duration_ns"] / 1e9
    ok["srv_prefill_s"] = ok["prompt_eval_duration_ns"] / 1e9
    ok["srv_first_decode_s"] = ok["eval_duration_ns"] / 1e9 / ok["n_tokens_srv"].clip(lower=1)
    parts = ["ttft_s", *DECOMPOSITION]
    med = ok.groupby(GROUP)[parts].median() * 1000
    med.columns = [c.replace("_s", "_ms") for c in parts]
    return med.reset_index()


def error_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Errors by target × status with a count and the first message of each kind."""
    bad = rows[rows["status"].isin(_ERRORS)]
    if bad.empty:
        return pd.DataFrame(columns=["target", "streams", "status", "count", "first_error"])
    grouped = bad.groupby(["target", "streams", "status"])
    return grouped.agg(count=("status", "size"), first_error=("error", "first")).reset_index()


def paired(rows: pd.DataFrame) -> pd.DataFrame:
    """Added by path: each target against `direct` on the same prompt ids and stream count.

    Rows are paired by prompt id (median per prompt first, since a prompt can repeat); the
    table gives the median and p90 of the paired TTFT differences, the median per-stream
    tok/s ratio and the median E2E difference.
    """
    cols = ["target", "streams", "pairs", "d_ttft_ms_p50", "d_ttft_ms_p90", "tok_s_ratio_p50"]
    ok = rows[(rows["status"] == str(Status.OK)) & (rows["phase"] == "measure")]
    if "direct" not in set(ok["target"]):
        return pd.DataFrame(columns=[*cols, "d_e2e_ms_p50"])
    per = ok.groupby(["target", "streams", "prompt_id"])[["ttft_s", "stream_tok_s", "e2e_s"]]
    med = per.median().reset_index()
    base = med[med["target"] == "direct"].drop(columns="target")
    out = []
    for (target, streams), cell in med[med["target"] != "direct"].groupby(GROUP):
        both = cell.merge(base, on=["streams", "prompt_id"], suffixes=("", "_direct"))
        if both.empty:
            continue
        d_ttft = (both["ttft_s"] - both["ttft_s_direct"]) * 1000
        ratio = both["stream_tok_s"] / both["stream_tok_s_direct"]
        out.append(
            {
                "target": target,
                "streams": streams,
                "pairs": len(both),
                "d_ttft_ms_p50": quantile(d_ttft, 0.5),
                "d_ttft_ms_p90": quantile(d_ttft, 0.9),
                "tok_s_ratio_p50": quantile(ratio, 0.5),
                "d_e2e_ms_p50": quantile((both["e2e_s"] - both["e2e_s_direct"]) * 1000, 0.5),
            }
        )
    return pd.DataFrame(out, columns=[*cols, "d_e2e_ms_p50"])


def nkn_transport(rows: pd.DataFrame) -> pd.DataFrame:
    """NKN transport per target × streams: DMs per request, lines per DM, bytes per token,
    relay-side time, lost and reordered lines (rows that went through the relay)."""
    cols = [
        *GROUP, "requests", "dms_per_request", "lines_per_dm", "dm_bytes_per_token",
        "relay_t_ms_p50", "seq_gaps", "out_of_order",
    ]  # fmt: skip
    relayed = rows[(rows["phase"] == "measure") & rows["nkn_frames"].notna()]
    out = []
    for (target, streams), cell in relayed.groupby(GROUP):
        frames = float(cell["nkn_frames"].sum())
        chunks = float(cell["n_chunks"].sum())
        out.append(
            {
                "target": target,
                "streams": streams,
                "requests": len(cell),
                "dms_per_request": frames / len(cell),
                "lines_per_dm": chunks / frames if frames else float("nan"),
                "dm_bytes_per_token": float(cell["nkn_dm_bytes"].sum()) / chunks
                if chunks
                else float("nan"),
                "relay_t_ms_p50": quantile(cell["nkn_relay_t_ms"], 0.5),
                "seq_gaps": int(cell["nkn_seq_gaps"].sum()),
                "out_of_order": int(cell["nkn_out_of_order"].sum()),
            }
        )
    return pd.DataFrame(out, columns=cols)


@dataclass(frozen=True, slots=True)
class Tables:
    """Every summary table of one report, computed from the raw rows and health samples."""

    summary: pd.DataFrame
    decomposition: pd.DataFrame
    errors: pd.DataFrame
    paired: pd.DataFrame
    nkn: pd.DataFrame
    checks: tuple[harness.HarnessCheck, ...]


def _ms_to_s(value: Any) -> float | None:
    return None if value is None else float(value) / 1000


def tables(rows: pd.DataFrame, health: pd.DataFrame, config: Mapping[str, Any]) -> Tables:
    """The report's tables for `rows`, with the run's recorded `config` (SLOs, load shape)."""
    summ = summarize(rows, _ms_to_s(config.get("slo_ttft_ms")), _ms_to_s(config.get("slo_tpot_ms")))
    # Results written before the settings classes recorded the open-loop rate as `rate_per_s`.
    rate = config.get("rate", config.get("rate_per_s"))
    closed = rate is None and config.get("requests") is None
    bounded = config.get("requests") is None
    duration = config.get("duration") or (DEFAULT_DURATION_S if bounded else None)
    short_runs = {
        (str(target), int(streams)): short_run.verdict(
            cell, duration, int(config.get("max_tokens", 128)), int(config.get("warmup", 1))
        )
        for (target, streams), cell in rows.groupby(GROUP)
    }
    return Tables(
        summary=summ,
        decomposition=decomposition(rows),
        errors=error_table(rows),
        paired=paired(rows),
        nkn=nkn_transport(rows),
        checks=harness.check_runs(summ, health, closed_loop=closed, short_runs=short_runs),
    )
