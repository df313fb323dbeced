"""The tune's plots (matplotlib PNGs): capacity per NUM_PARALLEL with its CI, latency against
users with the SLO lines, and the Pareto front of aggregate against per-user tokens/s."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are only written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    LogLocator,
    MaxNLocator,
    NullFormatter,
    ScalarFormatter,
)

from bench.tune.outcome import TuneResult  # noqa: E402


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def capacity(result: TuneResult, out: Path) -> Path:
    """Bars: users served per NUM_PARALLEL, with the 95% CI as error bars."""
    fig, ax = plt.subplots(figsize=(6, 4))
    cands = result.candidates
    x = np.arange(len(cands))
    users = np.array([c.capacity.users for c in cands], dtype=float)
    err = np.array(
        [
            [c.capacity.users - c.capacity.lo for c in cands],
            [c.capacity.hi - c.capacity.users for c in cands],
        ],
        dtype=float,
    ).reshape(2, len(cands))
    best = result.best
    colors = ["tab:green" if best is not None and c is best else "tab:blue" for c in cands]
    bars = ax.bar(x, users, yerr=err, capsize=6, color=colors, alpha=0.8)
    for bar, c in zip(bars, cands, strict=True):
        if not c.complete:
            bar.set_hatch("//")
    for xi, c in zip(x, cands, strict=True):
        label = f"{'≥' if c.capacity.at_least else ''}{c.capacity.users}"
        label += "" if c.complete else " (search cut short)"
        ax.annotate(
            label, (xi, c.capacity.hi), textcoords="offset points", xytext=(0, 8), ha="center"
        )
    ax.set_xticks(x, [str(c.num_parallel) for c in cands])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max([c.capacity.hi for c in cands] + [1]) * 1.15)
    ax.set(
        xlabel="NUM_PARALLEL",
        ylabel="concurrent users within the SLOs",
        title=f"Capacity (95% CI)\n{result.slo_text()}",
    )
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out / "capacity.png")


def latency(levels: pd.DataFrame, result: TuneResult, out: Path) -> Path:
    """TTFT p95 and TPOT p95 against users, one line per NUM_PARALLEL, SLOs dashed."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for num_parallel, cell in levels.groupby("num_parallel"):
        cell = cell.sort_values("users")
        for ax, key in ((ax1, "ttft_p95"), (ax2, "tpot_p95")):
            mid = cell[f"{key}_s"] * 1000
            lo = (cell[f"{key}_s"] - cell[f"{key}_lo_s"]).clip(lower=0) * 1000
            hi = (cell[f"{key}_hi_s"] - cell[f"{key}_s"]).clip(lower=0) * 1000
            ax.errorbar(
                cell["users"], mid, yerr=[lo, hi], marker="o", capsize=3, label=f"NP={num_parallel}"
            )
    ax1.axhline(result.config.slo_ttft_p95 * 1000, color="red", ls="--", label="SLO")
    ax2.axhline(result.config.slo_tpot_p95 * 1000, color="red", ls="--", label="SLO")
    ax1.set(xlabel="concurrent users", ylabel="TTFT p95 (ms)", title="Time to first token, p95")
    ax2.set(xlabel="concurrent users", ylabel="TPOT p95 (ms)", title="Time per output token, p95")
    for ax in (ax1, ax2):
        ax.set_yscale("log")
        # Plain millisecond labels: "2000", not "2 × 10³".
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(fig, out / "latency.png")


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The levels no other level beats on both aggregate and per-user tokens/s."""
    pts = points.dropna(subset=["agg_tok_s", "per_user_tok_s"])
    keep = []
    for i, row in pts.iterrows():
        better = (pts["agg_tok_s"] >= row["agg_tok_s"]) & (
            pts["per_user_tok_s"] >= row["per_user_tok_s"]
        )
        strictly = (pts["agg_tok_s"] > row["agg_tok_s"]) | (
            pts["per_user_tok_s"] > row["per_user_tok_s"]
        )
        if not (better & strictly).any():
            keep.append(i)
    return pts.loc[keep].sort_values("per_user_tok_s")


def pareto(levels: pd.DataFrame, out: Path) -> Path:
    """Every level as aggregate vs per-user tokens/s; the front joined; SLO-passing filled."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for num_parallel, cell in levels.groupby("num_parallel"):
        ok = cell[cell["passed"]]
        bad = cell[~cell["passed"]]
        dots = ax.scatter(ok["per_user_tok_s"], ok["agg_tok_s"], label=f"NP={num_parallel}")
        ax.scatter(
            bad["per_user_tok_s"],
            bad["agg_tok_s"],
            facecolors="none",
            edgecolors=dots.get_facecolor(),
        )
        for _, row in cell.iterrows():
            ax.annotate(
                str(row["users"]),
                (row["per_user_tok_s"], row["agg_tok_s"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    front = pareto_front(levels)
    ax.plot(front["per_user_tok_s"], front["agg_tok_s"], color="black", lw=1, label="Pareto front")
    ax.set(
        xlabel="per-user tokens/s (median)",
        ylabel="aggregate tokens/s",
        title="Throughput trade-off (filled: within SLOs;\nlabels: users)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "pareto.png")


def all_plots(levels: pd.DataFrame, result: TuneResult, out: Path) -> list[Path]:
    """Every plot of the tune's report (none when nothing was measured)."""
    if levels.empty:
        return []
    out.mkdir(parents=True, exist_ok=True)
    return [capacity(result, out), latency(levels, result, out), pareto(levels, out)]
