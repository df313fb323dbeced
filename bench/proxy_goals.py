"""The proxy's goals against nginx, and the benchmark's tables: pure functions, no I/O.

"Added" is a path's value minus direct's value at the same concurrency in the same run. The
goals, per proxy server:

* at 9 streams, proxy added TTFT p50 minus nginx added TTFT p50 is at most 0.5 ms;
* at 64 streams, proxy added TTFT p99 is at most 2x nginx added TTFT p99;
* RSS under 120 MB with 256 streams open; a 1 GiB blob upload grows RSS by under 30 MB.

A goal whose inputs are missing from the run (a level not measured, no nginx column, nginx
adding nothing measurable at p99) is reported as n/a, never as met. On a shared machine
the pooled p99 of a few rounds follows the one round another process disturbed, so the
tables also give each path's median over rounds of the round's p99 (`rnd p99`) and the
ratio from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.proxy_streams import PathSummary

P50_LEVEL = 9
P99_LEVEL = 64
GOAL_P50_GAP_MS = 0.5
GOAL_P99_RATIO = 2.0
GOAL_RSS_MB = 120.0
GOAL_UPLOAD_GROWTH_MB = 30.0
DIRECT, NGINX = "direct", "nginx"


def p50_gap_ms(proxy_p50_ms: float, nginx_p50_ms: float, direct_p50_ms: float) -> float:
    """(proxy added TTFT p50) - (nginx added TTFT p50), in ms."""
    return (proxy_p50_ms - direct_p50_ms) - (nginx_p50_ms - direct_p50_ms)


def p99_ratio(proxy_p99_ms: float, nginx_p99_ms: float, direct_p99_ms: float) -> float | None:
    """(proxy added TTFT p99) / (nginx added TTFT p99); None when either added nothing (<= 0):
    a ratio to zero, or of a proxy "faster" than going direct, is a disturbed direct column,
    not a met goal."""
    nginx_added = nginx_p99_ms - direct_p99_ms
    proxy_added = proxy_p99_ms - direct_p99_ms
    if not (nginx_added > 0 and proxy_added > 0):
        return None
    return proxy_added / nginx_added


@dataclass(frozen=True, slots=True)
class ServerGoals:
    """One proxy server's figures against the goals (None: not measured in this run)."""

    server: str
    p50_gap_ms: float | None
    p99_ratio: float | None
    rss_mb: float | None
    upload_growth_mb: float | None
    #: Not a goal: the p99 ratio again with each path's median over rounds of the round's
    #: p99 (`rnd p99`), which one disturbed round on a shared machine cannot swing.
    p99_round_ratio: float | None = None

    def met(self) -> dict[str, bool | None]:
        """Each goal: met, not met, or None when its figure is missing."""
        return {
            "p50_gap": _within(self.p50_gap_ms, GOAL_P50_GAP_MS),
            "p99_ratio": _within(self.p99_ratio, GOAL_P99_RATIO),
            "rss": _within(self.rss_mb, GOAL_RSS_MB, strict=True),
            "upload_growth": _within(self.upload_growth_mb, GOAL_UPLOAD_GROWTH_MB, strict=True),
        }


def _within(value: float | None, goal: float, strict: bool = False) -> bool | None:
    if value is None or math.isnan(value):
        return None
    return value < goal if strict else value <= goal


def _round_p99(s: PathSummary) -> float:
    return s.extra.get("ttft_p99_round_median_ms", math.nan)


def server_goals(
    summaries: Sequence[PathSummary],
    server: str,
    rss_mb: float | None = None,
    upload_growth_mb: float | None = None,
) -> ServerGoals:
    """The goal figures of the path named `server` against `nginx` and `direct`."""
    by = {(s.path, s.streams): s for s in summaries}
    gap = ratio = None
    need = [(server, P50_LEVEL), (NGINX, P50_LEVEL), (DIRECT, P50_LEVEL)]
    if all(k in by for k in need):
        p, n, d = (by[k] for k in need)
        gap = p50_gap_ms(p.ttft_p50_ms, n.ttft_p50_ms, d.ttft_p50_ms)
    steady = None
    need = [(server, P99_LEVEL), (NGINX, P99_LEVEL), (DIRECT, P99_LEVEL)]
    if all(k in by for k in need):
        p, n, d = (by[k] for k in need)
        ratio = p99_ratio(p.ttft_p99_ms, n.ttft_p99_ms, d.ttft_p99_ms)
        steady = p99_ratio(_round_p99(p), _round_p99(n), _round_p99(d))
    return ServerGoals(server, gap, ratio, rss_mb, upload_growth_mb, steady)


def _metrics(s: PathSummary, d: PathSummary) -> list[str]:
    same = s is d
    return [
        f"{s.errors}/{s.requests}",
        f"{s.ttft_p50_ms:.2f}",
        f"{s.ttft_p99_ms:.2f}",
        "-" if same else f"{s.ttft_p50_ms - d.ttft_p50_ms:+.2f}",
        "-" if same else f"{s.ttft_p99_ms - d.ttft_p99_ms:+.2f}",
        f"{_round_p99(s):.2f}",
        "-" if same else f"{_round_p99(s) - _round_p99(d):+.2f}",
        f"{s.lag_p50_ms:.2f}",
        f"{s.lag_p99_ms:.2f}",
        f"{cpu:.2f}" if (cpu := s.extra.get("cpu_ms_per_request")) is not None else "-",
    ]


_ROWS = (
    "errors/reqs",
    "TTFT p50",
    "TTFT p99",
    "+TTFT p50",
    "+TTFT p99",
    "rnd p99",
    "+rnd p99",
    "lag p50",
    "lag p99",
    "CPU/request",
)


def side_by_side(summaries: Sequence[PathSummary]) -> list[str]:
    """One block per concurrency: a row per metric (ms), a column per path, direct first;
    `+` rows are added over direct; `rnd p99` is the median over rounds of each round's
    p99 (steadier than the pooled p99 on a shared machine); CPU/request is the path's own
    process tree (proxies and nginx)."""
    paths = list(dict.fromkeys(s.path for s in summaries))
    by = {(s.path, s.streams): s for s in summaries}
    width = max(9, *(len(p) + 1 for p in paths))
    out = [f"{'streams':>7}  {'metric (ms)':12}" + "".join(f"{p:>{width}}" for p in paths)]
    for streams in dict.fromkeys(s.streams for s in summaries):
        direct = by.get((DIRECT, streams))
        cols = [
            _metrics(by[(p, streams)], direct or by[(p, streams)])
            if (p, streams) in by
            else ["n/a"] * len(_ROWS)
            for p in paths
        ]
        for i, name in enumerate(_ROWS):
            out.append(f"{streams:7d}  {name:12}" + "".join(f"{c[i]:>{width}}" for c in cols))
    return out


def _cell(value: float | None, met: bool | None, unit: str) -> str:
    if value is None or met is None:
        return "n/a"
    return f"{value:.2f}{unit} {'MET' if met else 'NOT MET'}"


def goal_table(goals: Sequence[ServerGoals]) -> list[str]:
    """One row per proxy server: each goal's figure and whether it is met; a last column,
    not a goal, gives the p99 ratio from the round medians (`ServerGoals.p99_round_ratio`)."""
    heads = (
        f"+p50@{P50_LEVEL} - nginx (<= {GOAL_P50_GAP_MS} ms)",
        f"+p99@{P99_LEVEL} / nginx (<= {GOAL_P99_RATIO:g}x)",
        f"RSS (< {GOAL_RSS_MB:g} MB)",
        f"upload growth (< {GOAL_UPLOAD_GROWTH_MB:g} MB)",
        f"+rnd p99@{P99_LEVEL} / nginx",
    )
    width = max(14, *(len(g.server) + 2 for g in goals))
    out = [f"{'server':{width}}" + "".join(f"{h:>28}" for h in heads)]
    for g in goals:
        met = g.met()
        cells = (
            _cell(g.p50_gap_ms, met["p50_gap"], " ms"),
            _cell(g.p99_ratio, met["p99_ratio"], "x"),
            _cell(g.rss_mb, met["rss"], " MB"),
            _cell(g.upload_growth_mb, met["upload_growth"], " MB"),
            "n/a" if g.p99_round_ratio is None else f"{g.p99_round_ratio:.2f}x",
        )
        out.append(f"{g.server:{width}}" + "".join(f"{c:>28}" for c in cells))
    return out
