"""Streamed-generate measurement for the proxy benchmark: TTFT and per-line delivery lag per path.

One `StreamRow` per stream (receive time and `created_at` of every line), `PathSummary`
quantiles per path and concurrency. Paths are measured round by round, interleaved, so drift
on a shared machine hits all of them alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import aiohttp

from bench.process_tree import tree_cpu_s
from bench.quantiles import percentiles, quantile
from farm.common.rfc3339 import parse_ns

MODEL = "gemma3:4b"


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One measured stream: TTFT and the delivery lag of each of its lines."""

    path: str
    streams: int
    ttft_s: float
    line_lags_s: tuple[float, ...]
    lines: int
    error: str | None = None
    round_index: int = 0


@dataclass
class PathSummary:
    """Quantiles for one path at one concurrency (errors counted, excluded from quantiles)."""

    path: str
    streams: int
    requests: int
    errors: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    lag_p50_ms: float
    lag_p99_ms: float
    lines: int
    extra: dict[str, float] = field(default_factory=dict)


def line_lags_s(raw: Sequence[tuple[int, bytes]]) -> tuple[float, ...]:
    """Receive time minus `created_at` of each line, in seconds; lines whose stamp is not
    RFC 3339 UTC (none from Ollama or the simulator) are left out."""
    lags = []
    for recv_ns, stamp in raw:
        sent_ns = parse_ns(stamp.decode("ascii", "replace"))
        if sent_ns is not None:
            lags.append((recv_ns - sent_ns) / 1e9)
    return tuple(lags)


def generate_body(prompt: str, tokens: int) -> dict[str, object]:
    """A streamed `/api/generate` request for `tokens` tokens."""
    return {"model": MODEL, "prompt": prompt, "options": {"num_predict": tokens}}


async def one_stream(
    http: aiohttp.ClientSession, url: str, path: str, streams: int, index: int, tokens: int
) -> StreamRow:
    """Send one streamed generate; record receive time and `created_at` of every line."""
    body = generate_body(f"bench {index}", tokens)
    raw: list[tuple[int, bytes]] = []
    start = time.perf_counter()
    ttft = float("nan")
    try:
        async with http.post(url + "/api/generate", json=body) as resp:
            if resp.status != 200:
                return StreamRow(path, streams, ttft, (), 0, f"HTTP {resp.status}")
            async for line in resp.content:
                now_ns = time.time_ns()
                if not raw:
                    ttft = time.perf_counter() - start
                at = line.find(b'"created_at":"')
                raw.append((now_ns, line[at + 14 : line.find(b'"', at + 14)]))
    except aiohttp.ClientError as exc:
        return StreamRow(path, streams, ttft, (), len(raw), f"{type(exc).__name__}: {exc}")
    # Parse stamps after the clock stopped, so parsing cost is not measured as lag.
    return StreamRow(path, streams, ttft, line_lags_s(raw), len(raw))


async def run_round(
    http: aiohttp.ClientSession, url: str, path: str, streams: int, tokens: int, rnd: int
) -> list[StreamRow]:
    """Round `rnd`: `streams` concurrent streams on one path, each with its own prompt."""
    first = rnd * streams
    jobs = [one_stream(http, url, path, streams, first + i, tokens) for i in range(streams)]
    return [replace(row, round_index=rnd) for row in await asyncio.gather(*jobs)]


def summarise(rows: list[StreamRow]) -> PathSummary:
    """Quantiles over good rows; errors are counted.

    `extra["ttft_p99_round_median_ms"]` is the median over rounds of each round's TTFT p99:
    the streams of one round start together, so one disturbed round (another process
    taking the CPU) moves the pooled p99 of a few rounds by itself, and this one much less.
    """
    good = [r for r in rows if r.error is None]
    ttft_p50, ttft_p99 = percentiles([r.ttft_s for r in good], (0.5, 0.99))
    lag_p50, lag_p99 = percentiles([lag for r in good for lag in r.line_lags_s], (0.5, 0.99))
    by_round: dict[int, list[float]] = {}
    for r in good:
        by_round.setdefault(r.round_index, []).append(r.ttft_s)
    round_p99 = quantile([quantile(v, 0.99) for v in by_round.values()], 0.5)
    summary = PathSummary(
        path=rows[0].path,
        streams=rows[0].streams,
        requests=len(rows),
        errors=len(rows) - len(good),
        ttft_p50_ms=ttft_p50 * 1000,
        ttft_p99_ms=ttft_p99 * 1000,
        lag_p50_ms=lag_p50 * 1000,
        lag_p99_ms=lag_p99 * 1000,
        lines=sum(len(r.line_lags_s) for r in good),
    )
    summary.extra["ttft_p99_round_median_ms"] = round_p99 * 1000
    return summary


def client_session(headers: Mapping[str, str] | None = None) -> aiohttp.ClientSession:
    """A client that keeps its connections, as a real one does (no env proxies)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        trust_env=False,
        headers=headers,
    )


def measure(
    paths: dict[str, str],
    levels: Sequence[int],
    rounds: int,
    tokens: int,
    pids: Mapping[str, int] | None = None,
    headers: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[list[PathSummary], list[StreamRow]]:
    """Run every level on every path: summaries and the raw rows; see `_measure`.

    `headers` adds request headers per path (e.g. a path's API key)."""
    return asyncio.run(_measure(paths, levels, rounds, tokens, pids or {}, headers or {}))


async def _measure(
    paths: dict[str, str],
    levels: Sequence[int],
    rounds: int,
    tokens: int,
    pids: Mapping[str, int],
    headers: Mapping[str, Mapping[str, str]],
) -> tuple[list[PathSummary], list[StreamRow]]:
    """Interleave paths round by round so drift on a shared machine hits all of them alike.

    Each path has one long-lived client session, as a real client keeps its connections:
    round 0 opens them (and warms code paths) and is not counted. A path with a pid in
    `pids` (a proxy process tree) also gets its CPU time per measured request
    (`extra["cpu_ms_per_request"]`), counted over its own rounds only.
    """
    sessions = {name: client_session(headers.get(name)) for name in paths}
    summaries: list[PathSummary] = []
    kept: list[StreamRow] = []
    try:
        for streams in levels:
            rows: dict[str, list[StreamRow]] = {name: [] for name in paths}
            cpu_s = dict.fromkeys(pids, 0.0)
            for rnd in range(rounds + 1):
                # Rotate the order each round: no path always runs right after another.
                names = list(paths)
                names = names[rnd % len(names) :] + names[: rnd % len(names)]
                for name in names:
                    http = sessions[name]
                    before = tree_cpu_s(pids[name]) if name in pids else 0.0
                    result = await run_round(http, paths[name], name, streams, tokens, rnd)
                    if rnd:
                        rows[name] += result
                        if name in pids:
                            cpu_s[name] += tree_cpu_s(pids[name]) - before
            for name, r in rows.items():
                summary = summarise(r)
                if name in cpu_s:
                    summary.extra["cpu_ms_per_request"] = cpu_s[name] * 1000 / len(r)
                summaries.append(summary)
            kept += [row for r in rows.values() for row in r]
    finally:
        for http in sessions.values():
            await http.close()
    return summaries, kept
