"""The harness's self-check: is the load generator itself the bottleneck of a run?

From the workers' per-second health samples (process CPU, gevent hub wake-up lag) and the
summary (requested vs achieved concurrency, send lag) it gives a verdict with its reasons; the
report prints a bold warning suggesting `--workers` when the client is the bottleneck. A run
in which no answer completed is not the client's fault: it gets the short-run verdict
(`bench.short_run`) instead of a concurrency shortfall.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from bench.quantiles import quantiles

# Thresholds: on a 2-vCPU box TTFT error stays within a few ms while one
# worker stays under about half a core. The hub-lag probe (a greenlet sleeping 10 ms) wakes late
# by whatever held the CPU; its typical lateness (median of the per-second medians) adds to
# every measured time, so it is judged against the 2 ms accuracy bar. Its worst case per second
# is mostly the OS running another process and is shown, not judged.
CPU_LIMIT_PCT = 60.0
HUB_LAG_LIMIT_MS = 2.0
CONCURRENCY_SHORTFALL = 0.9


@dataclass(frozen=True, slots=True)
class HarnessCheck:
    """Self-check of one target × streams run."""

    target: str
    streams: int
    workers: int
    cpu_pct_max: float
    cpu_pct_mean: float
    hub_lag_p50_ms: float
    hub_lag_p99_ms: float
    achieved_streams: float
    send_lag_p99_ms: float
    client_bound: bool
    reasons: tuple[str, ...]
    advice: str
    # Set when no answer completed in the run (`bench.short_run`): the run was too short, so
    # the missing concurrency is not the load generator's.
    short_run: str = ""


def check(
    target: str,
    streams: int,
    health: pd.DataFrame,
    achieved: float,
    send_lag_p99_ms: float,
    check_concurrency: bool,
    short_run: str = "",
) -> HarnessCheck:
    """Judge one run from its health samples (all workers) and summary numbers; concurrency is
    judged only for closed-loop, duration-bound runs (open loop and a draining quota run below
    the requested streams by design)."""
    workers = int(health["worker_id"].nunique()) if len(health) else 0
    if len(health):
        # The first sample of each worker includes its start-up; drop it when there are more.
        first = health.groupby("worker_id").cumcount() == 0
        several = health.groupby("worker_id")["worker_id"].transform("size") > 1
        steady = health[~(first & several)]
    else:
        steady = health
    cpu = steady["cpu_pct"] if len(steady) else pd.Series(dtype=float)
    typical = "hub_lag_p50_ms" if "hub_lag_p50_ms" in steady else "hub_lag_max_ms"
    lag = quantiles(steady[typical] if len(steady) else [])
    worst = quantiles(steady["hub_lag_max_ms"] if len(steady) else [])
    cpu_max = float(cpu.max()) if len(cpu) else float("nan")
    reasons = []
    busy_worker = cpu_max > CPU_LIMIT_PCT
    if busy_worker:
        reasons.append(f"a worker used {cpu_max:.0f} % of a core (limit {CPU_LIMIT_PCT:.0f} %)")
    if lag.n and lag.p50 > HUB_LAG_LIMIT_MS:
        reasons.append(f"typical hub lag {lag.p50:.1f} ms (limit {HUB_LAG_LIMIT_MS:.0f} ms)")
    if check_concurrency and not short_run and achieved < CONCURRENCY_SHORTFALL * streams:
        reasons.append(f"achieved {achieved:.2f} of {streams} requested concurrent streams")
    # More runnable processes than CPUs: every process, the server's too, waits for a core, so
    # latencies carry scheduling delay no --workers can remove.
    machine_busy = False
    if "loadavg_1m" in steady and len(steady):
        load = float(steady["loadavg_1m"].median())
        cpus = int(steady["cpu_count"].max())
        if load > cpus:
            machine_busy = True
            reasons.append(f"the machine was busy: load average {load:.1f} on {cpus} CPUs")
    # A lagging hub in a worker that barely uses its CPU was waiting for a core, not working:
    # more workers would not help, a quieter machine (or pinned cores) would.
    advice = f"rerun with `--workers {max(2, workers + 1)}`"
    lagging_idle = not busy_worker and lag.n and lag.p50 > HUB_LAG_LIMIT_MS
    if reasons and not busy_worker and (machine_busy or lagging_idle):
        advice = "the machine is busy: give the load generator its own cores or a quieter host"
    return HarnessCheck(
        target=target,
        streams=streams,
        workers=workers,
        cpu_pct_max=cpu_max,
        cpu_pct_mean=float(cpu.mean()) if len(cpu) else float("nan"),
        hub_lag_p50_ms=lag.p50,
        hub_lag_p99_ms=worst.p99,
        achieved_streams=achieved,
        send_lag_p99_ms=send_lag_p99_ms,
        client_bound=bool(reasons),
        reasons=tuple(reasons),
        advice=advice if reasons else "",
        short_run=short_run,
    )


def check_runs(
    summary: pd.DataFrame,
    health: pd.DataFrame,
    closed_loop: bool,
    short_runs: Mapping[tuple[str, int], str] | None = None,
) -> tuple[HarnessCheck, ...]:
    """One `check` per row of the summary table, each on the health samples of its own run
    (`<target>-s<streams>`); concurrency is judged only for a closed-loop, duration-bound run.
    `short_runs` holds the verdict of each run in which no answer completed."""
    out = []
    for _, row in summary.iterrows():
        run = f"{row['target']}-s{row['streams']}"
        cell = health[health["run"] == run] if len(health) else health
        out.append(
            check(
                str(row["target"]),
                int(row["streams"]),
                cell,
                float(row["achieved_streams"]),
                float(row["send_lag_ms_p99"]),
                check_concurrency=closed_loop,
                short_run=(short_runs or {}).get((str(row["target"]), int(row["streams"])), ""),
            )
        )
    return tuple(out)
