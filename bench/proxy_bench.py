"""Proxy overhead benchmark: TTFT and per-line delivery lag, direct vs this proxy vs nginx.

Run as `python -m bench.proxy_bench` (not a test). In one run on loopback, with the Ollama
simulator as the backend, it measures streamed `/api/generate` requests at 9 and 64
concurrent streams along three paths:

* direct to the simulator,
* through `farm.proxy` (raw ASGI on uvicorn/uvloop/httptools with its lean httptools
  upstream client, access log off),
* through nginx configured as a zero-buffering streaming proxy (`bench.reference_proxy`),

and prints p50/p99 TTFT, the TTFT each proxy adds over direct, the per-line delivery lag
(client receive time minus the line's `created_at` stamp) and the proxy's goals against
nginx (`report`). It then holds 256 slow streams open through the proxy and reports its RSS.

Setup step: nginx comes from Debian (`apt-get install -y nginx-light`) when it is missing
and the script runs as root with apt (`bench.reference_proxy`); otherwise the nginx column is
skipped with a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from pydantic import field_validator

from bench.quantiles import quantile
from bench.reference_proxy import find_nginx, nginx_proxy
from bench.settings import stream_counts
from farm.common.rfc3339 import parse_ns
from farm.proxy.child import ProxyServer
from farm.settings import Loaded, ServiceSettings, run_main, setting
from farm.sim.child import SimServer

MODEL = "gemma3:4b"
SCHEMA_VERSION = 1


class ProxyBenchSettings(ServiceSettings):
    """What the proxy benchmark runs; written in full beside its summaries (`--out`)."""

    prog = "python -m bench.proxy_bench"
    summary = "Proxy overhead: TTFT and per-line delivery lag, direct vs farm.proxy vs nginx."

    streams: tuple[int, ...] = setting(
        (9, 64), help="concurrency levels, a comma list (or repeat)", metavar="N,N…", min_length=1
    )
    rounds: int = setting(10, help="measured rounds per path and level", ge=1)
    max_tokens: int = setting(20, help="num_predict per stream", deprecated=("--tokens",), ge=1)
    decode_ms: float = setting(20.0, help="simulated ms per token", ge=0, allow_inf_nan=False)
    rss_streams: int = setting(256, help="slow streams held open for the RSS check", ge=1)
    nginx: bool = setting(True, help="skip the nginx column", flag="--no-nginx")
    install: bool = setting(True, help="never apt-get install nginx", flag="--no-install")
    out: Path | None = setting(None, help="write summaries and the full config as JSON here")

    @field_validator("streams", mode="before")
    @classmethod
    def _streams(cls, value: object) -> object:
        return stream_counts(value)


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One measured stream: TTFT and the delivery lag of each of its lines."""

    path: str
    streams: int
    ttft_s: float
    line_lags_s: tuple[float, ...]
    lines: int
    error: str | None = None


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


async def one_stream(
    http: aiohttp.ClientSession, url: str, path: str, streams: int, index: int, tokens: int
) -> StreamRow:
    """Send one streamed generate; record receive time and `created_at` of every line."""
    body = {"model": MODEL, "prompt": f"bench {index}", "options": {"num_predict": tokens}}
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
    http: aiohttp.ClientSession, url: str, path: str, streams: int, tokens: int, offset: int
) -> list[StreamRow]:
    """`streams` concurrent streams on one path."""
    jobs = [one_stream(http, url, path, streams, offset + i, tokens) for i in range(streams)]
    return list(await asyncio.gather(*jobs))


def summarise(rows: list[StreamRow]) -> PathSummary:
    """Quantiles over good rows; errors are counted."""
    good = [r for r in rows if r.error is None]
    ttfts = [r.ttft_s for r in good]
    lags = [lag for r in good for lag in r.line_lags_s]
    return PathSummary(
        path=rows[0].path,
        streams=rows[0].streams,
        requests=len(rows),
        errors=len(rows) - len(good),
        ttft_p50_ms=quantile(ttfts, 0.5) * 1000,
        ttft_p99_ms=quantile(ttfts, 0.99) * 1000,
        lag_p50_ms=quantile(lags, 0.5) * 1000,
        lag_p99_ms=quantile(lags, 0.99) * 1000,
        lines=len(lags),
    )


def measure(
    paths: dict[str, str], levels: Sequence[int], rounds: int, tokens: int
) -> list[PathSummary]:
    """Run every level on every path; see `_measure`."""
    return asyncio.run(_measure(paths, levels, rounds, tokens))


async def _measure(
    paths: dict[str, str], levels: Sequence[int], rounds: int, tokens: int
) -> list[PathSummary]:
    """Interleave paths round by round so drift on a shared machine hits all of them alike.

    Each path has one long-lived client session, as a real client keeps its connections:
    round 0 opens them (and warms code paths) and is not counted.
    """
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    sessions = {
        name: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            timeout=timeout,
            trust_env=False,
        )
        for name in paths
    }
    summaries: list[PathSummary] = []
    try:
        for streams in levels:
            rows: dict[str, list[StreamRow]] = {name: [] for name in paths}
            for rnd in range(rounds + 1):
                for name, url in paths.items():
                    http = sessions[name]
                    result = await run_round(http, url, name, streams, tokens, rnd * streams)
                    if rnd:
                        rows[name] += result
            summaries += [summarise(r) for r in rows.values()]
    finally:
        for http in sessions.values():
            await http.close()
    return summaries


def rss_at(proxy: ProxyServer, url: str, streams: int) -> tuple[float, float, int]:
    """Proxy RSS (MB) idle and with `streams` slow streams open; and how many were open."""
    proc = psutil.Process(proxy.pid)
    idle_mb = proc.memory_info().rss / 1e6

    async def hold() -> tuple[float, int]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
            opened = asyncio.Event()
            count = 0
            peak = 0.0

            async def stream(i: int) -> None:
                nonlocal count
                body = {"model": MODEL, "prompt": f"rss {i}", "options": {"num_predict": 40}}
                async with http.post(url + "/api/generate", json=body) as resp:
                    await resp.content.readline()
                    count += 1
                    if count == streams:
                        opened.set()
                    await resp.read()

            tasks = [asyncio.ensure_future(stream(i)) for i in range(streams)]
            try:
                await asyncio.wait_for(opened.wait(), 60)
            except TimeoutError:
                pass
            for _ in range(10):
                peak = max(peak, proc.memory_info().rss / 1e6)
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return peak, count

    peak_mb, opened = asyncio.run(hold())
    return idle_mb, peak_mb, opened


def report(summaries: list[PathSummary]) -> list[str]:
    """Table rows plus the proxy's goals: at 9 streams it adds at most 0.5 ms more median TTFT
    than nginx; at 64 streams its p99 TTFT is within 2x nginx's."""
    out = [
        f"{'path':8} {'streams':>7} {'reqs':>5} {'err':>4} {'TTFT p50':>9} {'TTFT p99':>9} "
        f"{'+TTFT p50':>10} {'+TTFT p99':>10} {'lag p50':>8} {'lag p99':>8}  (ms)"
    ]
    direct = {s.streams: s for s in summaries if s.path == "direct"}
    for s in summaries:
        base = direct[s.streams]
        s.extra["added_ttft_p50_ms"] = s.ttft_p50_ms - base.ttft_p50_ms
        s.extra["added_ttft_p99_ms"] = s.ttft_p99_ms - base.ttft_p99_ms
        out.append(
            f"{s.path:8} {s.streams:7d} {s.requests:5d} {s.errors:4d} {s.ttft_p50_ms:9.2f} "
            f"{s.ttft_p99_ms:9.2f} {s.extra['added_ttft_p50_ms']:10.2f} "
            f"{s.extra['added_ttft_p99_ms']:10.2f} {s.lag_p50_ms:8.2f} {s.lag_p99_ms:8.2f}"
        )
    by = {(s.path, s.streams): s for s in summaries}
    for streams in sorted(direct):
        proxy, nginx = by.get(("proxy", streams)), by.get(("nginx", streams))
        if proxy is None:
            continue
        vs_direct = proxy.ttft_p50_ms / direct[streams].ttft_p50_ms
        line = f"ratios at {streams}: proxy/direct TTFT p50 {vs_direct:.3f}"
        if nginx is not None:
            line += (
                f", proxy/nginx TTFT p50 {proxy.ttft_p50_ms / nginx.ttft_p50_ms:.3f}"
                f", p99 {proxy.ttft_p99_ms / nginx.ttft_p99_ms:.3f}"
                f", lag p99 {proxy.lag_p99_ms / nginx.lag_p99_ms:.3f}"
            )
        out.append(line)
    if ("nginx", 9) in by and ("proxy", 9) in by:
        p, n = by[("proxy", 9)], by[("nginx", 9)]
        ok = p.extra["added_ttft_p50_ms"] <= n.extra["added_ttft_p50_ms"] + 0.5
        out.append(
            f"goal 9 streams: proxy added TTFT p50 {p.extra['added_ttft_p50_ms']:.2f} ms <= nginx "
            f"{n.extra['added_ttft_p50_ms']:.2f} + 0.5 ms: {'MET' if ok else 'NOT MET'}"
        )
    if ("nginx", 64) in by and ("proxy", 64) in by:
        p, n = by[("proxy", 64)], by[("nginx", 64)]
        ok = p.ttft_p99_ms <= 2 * n.ttft_p99_ms
        out.append(
            f"goal 64 streams: proxy TTFT p99 {p.ttft_p99_ms:.2f} ms <= 2 x nginx "
            f"{n.ttft_p99_ms:.2f} ms: {'MET' if ok else 'NOT MET'}"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_main(ProxyBenchSettings, _bench, argv)


def _bench(loaded: Loaded[ProxyBenchSettings]) -> int:
    config = loaded.settings
    slots = max([*config.streams, config.rss_streams])
    # SimSettings fields: SimServer validates them and hands them to the child with `to_argv`.
    sim_flags: dict[str, Any] = {
        "num_parallel": slots,
        "load_ms": 0,
        "decode_ms": config.decode_ms,
        "prefill_ms_per_token": 0,
        "batch_slowdown": 0,
        "jitter": 0,
        "seed": 1,
    }
    nginx = find_nginx(config.install, loaded.environ) if config.nginx else None
    if nginx is None:
        print("nginx not available (install Debian's nginx-light): skipping the nginx column")
    with ExitStack() as stack:
        sim = stack.enter_context(SimServer(**sim_flags))
        proxy = stack.enter_context(ProxyServer([sim.url], access_log=False, num_parallel=slots))
        paths = {"direct": sim.url, "proxy": proxy.url}
        if nginx is not None:
            paths["nginx"] = stack.enter_context(nginx_proxy(nginx, sim.port))
        print(
            f"sim: {sim_flags}; {config.rounds} rounds x {config.max_tokens} tokens per level "
            "on loopback"
        )
        summaries = measure(paths, config.streams, config.rounds, config.max_tokens)
        for line in report(summaries):
            print(line)
        idle_mb, peak_mb, opened = rss_at(proxy, proxy.url, config.rss_streams)
        rss_ok = peak_mb < 120 and opened == config.rss_streams
        print(
            f"proxy RSS: idle {idle_mb:.1f} MB, {peak_mb:.1f} MB with {opened}/"
            f"{config.rss_streams} streams open (goal < 120 MB): {'MET' if rss_ok else 'NOT MET'}"
        )
    if config.out:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "schema_version": SCHEMA_VERSION,
            "config": {**config.model_dump(mode="json"), "sim": sim_flags},
            "summaries": [asdict(s) for s in summaries],
            "rss_mb": {"idle": idle_mb, "peak": peak_mb, "streams_open": opened},
        }
        config.out.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
