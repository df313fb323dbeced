"""Report plots: matplotlib PNGs, one figure per question, drawn from the rows and the summary
tables (the stage between `bench.summary` and `bench.render`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are only written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.record import Status  # noqa: E402
from bench.summary import Tables  # noqa: E402


def _legend(ax: Axes) -> None:
    """A legend only when something was drawn (an empty one is a matplotlib warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep(summary: pd.DataFrame, out: Path) -> list[Path]:
    """TTFT and per-stream tok/s vs streams; aggregate vs per-stream throughput."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    fig2, ax3 = plt.subplots(figsize=(6, 4))
    for target, cell in summary.groupby("target"):
        cell = cell.sort_values("streams")
        line = ax1.plot(cell["streams"], cell["ttft_ms_p50"], marker="o", label=f"{target} p50")[0]
        ax1.plot(
            cell["streams"],
            cell["ttft_ms_p90"],
            ls="--",
            color=line.get_color(),
            label=f"{target} p90",
        )
        ax2.plot(cell["streams"], cell["stream_tok_s_p50"], marker="o", label=str(target))
        ax3.plot(cell["streams"], cell["agg_tok_s"], marker="o", label=f"{target} aggregate")
        ax3.plot(cell["streams"], cell["stream_tok_s_p50"], ls="--", label=f"{target} per stream")
    ax1.set(xlabel="concurrent streams", ylabel="TTFT (ms)", title="Time to first token")
    ax2.set(
        xlabel="concurrent streams", ylabel="tokens/s per stream", title="Per-stream decode rate"
    )
    ax3.set(xlabel="concurrent streams", ylabel="output tokens/s", title="Aggregate vs per-stream")
    for ax in (ax1, ax2, ax3):
        _legend(ax)
        ax.grid(alpha=0.3)
    return [_save(fig, out / "sweep.png"), _save(fig2, out / "throughput.png")]


def ttft_cdf(rows: pd.DataFrame, out: Path) -> Path:
    """TTFT CDF per target at the largest stream count."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = rows[(rows["status"] == str(Status.OK)) & (rows["phase"] == "measure")]
    for (target, streams), cell in ok.groupby(["target", "streams"]):
        if streams != ok[ok["target"] == target]["streams"].max():
            continue
        values = np.sort(cell["ttft_s"].dropna().to_numpy() * 1000)
        if len(values):
            ax.step(
                values,
                np.arange(1, len(values) + 1) / len(values),
                where="post",
                label=f"{target} ×{streams}",
            )
    ax.set(xlabel="TTFT (ms)", ylabel="fraction of requests", title="TTFT CDF")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, out / "ttft_cdf.png")


def decomposition(decomp: pd.DataFrame, out: Path) -> Path:
    """Stacked bars of the median TTFT decomposition per target × streams."""
    fig, ax = plt.subplots(figsize=(7, 4))
    parts = [
        "srv_load_ms",
        "srv_wait_ms",
        "srv_prefill_ms",
        "srv_first_decode_ms",
        "transport_ttft_ms",
    ]
    labels = [f"{t}×{s}" for t, s in zip(decomp["target"], decomp["streams"], strict=True)]
    bottom = np.zeros(len(decomp))
    for part in parts:
        values = decomp[part].to_numpy(dtype=float) if len(decomp) else np.zeros(0)
        ax.bar(labels, values, bottom=bottom, label=part.removesuffix("_ms"))
        bottom += np.nan_to_num(values)
    ax.set(ylabel="ms (medians)", title="Where the TTFT goes")
    _legend(ax)
    ax.tick_params(axis="x", rotation=30)
    return _save(fig, out / "ttft_decomposition.png")


def timeline(rows: pd.DataFrame, health: pd.DataFrame, out: Path) -> Path:
    """TTFT per request over time, with in-flight streams and worker CPU."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    t0 = rows["start_unix_ns"].min() / 1e9 if len(rows) else 0.0
    for target, cell in rows.groupby("target"):
        ax1.scatter(cell["start_unix_ns"] / 1e9 - t0, cell["ttft_s"] * 1000, s=4, label=str(target))
    ax1.set(ylabel="TTFT (ms)", title="Requests over time")
    _legend(ax1)
    if len(health):
        for worker, g in health.groupby(["run", "worker_id"]):
            ax2.plot(g["t_unix_s"] - t0, g["cpu_pct"], lw=1, label=f"CPU % {worker[0]}/{worker[1]}")
            ax2.plot(g["t_unix_s"] - t0, g["in_flight"], lw=1, ls="--")
    ax2.set(xlabel="seconds", ylabel="CPU % / in flight (dashed)")
    return _save(fig, out / "timeline.png")


def itl_hist(rows: pd.DataFrame, out: Path) -> Path:
    """Inter-chunk gap histogram per target (log y)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = rows[(rows["status"] == str(Status.OK)) & (rows["phase"] == "measure")]
    for target, cell in ok.groupby("target"):
        gaps = [g * 1000 for gs in cell["token_gaps_s"] if gs is not None for g in gs]
        if gaps:
            ax.hist(gaps, bins=60, histtype="step", label=str(target))
    ax.set(xlabel="gap between chunks (ms)", ylabel="count", yscale="log", title="Inter-chunk gaps")
    _legend(ax)
    return _save(fig, out / "itl_hist.png")


def all_plots(rows: pd.DataFrame, tables: Tables, health: pd.DataFrame, out: Path) -> list[Path]:
    """Write every plot into `out` (created) and return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = sweep(tables.summary, out)
    paths += [
        ttft_cdf(rows, out),
        decomposition(tables.decomposition, out),
        timeline(rows, health, out),
        itl_hist(rows, out),
    ]
    return paths
