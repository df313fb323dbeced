"""Comparing two runs: each metric's change with a bootstrap confidence interval.

For every target x streams cell both runs measured, each per-request metric's p50 and p90
(of the successful measured requests) is compared as a relative change B / A - 1. Its 95 %
interval comes from a percentile bootstrap: both runs' requests are resampled independently,
with replacement, a seeded number of times. A change whose interval excludes zero is marked
significant, and said to be better or worse by the metric's direction (latency down is
better, tokens/s up is better); the rest is noise at this sample size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.record import Status

RESAMPLES = 2000
LEVEL = 0.95
_BATCH = 250


@dataclass(frozen=True, slots=True)
class Metric:
    """A per-request column, its display unit and which way is better."""

    name: str
    column: str
    scale: float
    lower_is_better: bool


METRICS = (
    Metric("ttft_ms", "ttft_s", 1000.0, True),
    Metric("tpot_ms", "tpot_s", 1000.0, True),
    Metric("e2e_s", "e2e_s", 1.0, True),
    Metric("stream_tok_s", "stream_tok_s", 1.0, False),
)
QUANTILES = (0.5, 0.9)
COLUMNS = [
    "target", "streams", "metric", "a", "b", "change_pct", "ci_low_pct", "ci_high_pct",
    "n_a", "n_b", "verdict",
]  # fmt: skip


def _values(rows: pd.DataFrame, column: str) -> np.ndarray:
    ok = rows[(rows["phase"] == "measure") & (rows["status"] == str(Status.OK))]
    values: np.ndarray = np.asarray(pd.to_numeric(ok[column], errors="coerce"), dtype=float)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def _boot_quantiles(values: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    out = []
    for start in range(0, RESAMPLES, _BATCH):
        size = min(_BATCH, RESAMPLES - start)
        picks = rng.integers(0, len(values), (size, len(values)))
        out.append(np.quantile(values[picks], q, axis=1))
    return np.concatenate(out)


def change_ci(a: np.ndarray, b: np.ndarray, q: float, seed: int = 0) -> tuple[float, float, float]:
    """(change, low, high) of quantile `q` from `a` to `b`, relative (0.1 is +10 %)."""
    rng = np.random.default_rng(seed)
    qa, qb = float(np.quantile(a, q)), float(np.quantile(b, q))
    boot_a, boot_b = _boot_quantiles(a, q, rng), _boot_quantiles(b, q, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_b / boot_a - 1
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail]) if len(ratios) else (np.nan, np.nan)
    return (qb / qa - 1 if qa else float("nan")), float(low), float(high)


def _verdict(low: float, high: float, lower_is_better: bool) -> str:
    if not (low > 0 or high < 0):
        return "noise"
    went_up = low > 0
    return "worse" if went_up == lower_is_better else "better"


def compare_runs(rows_a: pd.DataFrame, rows_b: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per cell x metric quantile both runs have: A, B, change and its 95 % CI."""
    records = []
    cells_b = {key: cell for key, cell in rows_b.groupby(["target", "streams"], sort=True)}
    for key, cell_a in rows_a.groupby(["target", "streams"], sort=True):
        if key not in cells_b:
            continue
        for metric in METRICS:
            a, b = _values(cell_a, metric.column), _values(cells_b[key], metric.column)
            if len(a) < 2 or len(b) < 2:
                continue
            for q in QUANTILES:
                change, low, high = change_ci(a, b, q, seed)
                records.append(
                    {
                        "target": key[0],
                        "streams": key[1],
                        "metric": f"{metric.name}_p{round(q * 100)}",
                        "a": float(np.quantile(a, q)) * metric.scale,
                        "b": float(np.quantile(b, q)) * metric.scale,
                        "change_pct": change * 100,
                        "ci_low_pct": low * 100,
                        "ci_high_pct": high * 100,
                        "n_a": len(a),
                        "n_b": len(b),
                        "verdict": _verdict(low, high, metric.lower_is_better),
                    }
                )
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def change_lines(changes: pd.DataFrame, a: str, b: str) -> list[str]:
    """Markdown: a heading, how to read it, and one row per change (significant ones marked)."""
    lines = [
        f"## Changes from {a} to {b}",
        "",
        f"Relative change of each quantile with its {LEVEL:.0%} bootstrap interval "
        f"({RESAMPLES} resamples of each run's requests). **worse** / **better**: the "
        "interval excludes zero; noise: it does not.",
        "",
        "| target | streams | metric | A | B | change | 95% CI | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in changes.itertuples(index=False):
        verdict = row.verdict if row.verdict == "noise" else f"**{row.verdict}**"
        lines.append(
            f"| {row.target} | {row.streams} | {row.metric} | {row.a:.4g} | {row.b:.4g} | "
            f"{row.change_pct:+.1f}% | [{row.ci_low_pct:+.1f}%, {row.ci_high_pct:+.1f}%] | "
            f"{verdict} |"
        )
    if changes.empty:
        lines.append("| (no target x streams cell with requests in both runs) | | | | | | | |")
    return lines
