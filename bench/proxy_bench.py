"""Proxy overhead benchmark: direct vs this proxy (on each server asked for) vs nginx.

Run as `python -m bench.proxy_bench` (not a test). In one run on loopback, with the Ollama
simulator as the backend, it measures streamed `/api/generate` requests at 9 and 64
concurrent streams along these paths, interleaved round by round (`bench.proxy_streams`):

* `direct` to the simulator,
* `farm.proxy`'s app on each `--server`: `uvicorn` (uvloop + httptools, as `python -m
  farm.proxy` ships it), `granian-asgi` and `granian-rsgi` (`bench.granian_proxy`),
* `nginx` configured as a zero-buffering streaming proxy (`bench.reference_proxy`),
* with `--floor`, `tcp-floor`: a bare byte relay on uvloop (`bench.tcp_relay`), what a
  Python data path costs with no HTTP work at all,

and prints them side by side (p50/p99 TTFT, TTFT added over direct, per-line delivery lag,
process CPU per request), then per server the goals against nginx (`bench.proxy_goals`): RSS
with 256 slow streams open and RSS growth during a 1 GiB blob upload (`bench.proxy_memory`).
`--profile DIR` also samples each server with py-spy at 9 streams (`bench.proxy_profile`).

Setup step: nginx comes from Debian when it is missing and the script runs as root with apt
(`bench.reference_proxy`); otherwise the nginx column is skipped with a message.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import field_validator

from bench.granian_proxy import GranianProxyServer, Interface
from bench.proxy_goals import P50_LEVEL, goal_table, server_goals, side_by_side
from bench.proxy_memory import rss_during_upload, rss_with_streams
from bench.proxy_profile import profile_server, profile_table
from bench.proxy_streams import measure
from bench.reference_proxy import find_nginx, nginx_proxy
from bench.settings import stream_counts
from bench.tcp_relay import TcpRelayServer
from farm.proxy.child import ProxyServer
from farm.settings import Loaded, ServiceSettings, run_main, setting
from farm.sim.child import SimServer

SCHEMA_VERSION = 2
SERVERS = ("uvicorn", "granian-asgi", "granian-rsgi")
RSS_TOKENS = 40
FLOOR = "tcp-floor"


class ProxyBenchSettings(ServiceSettings):
    """What the proxy benchmark runs; written in full beside its summaries (`--out`)."""

    prog = "python -m bench.proxy_bench"
    summary = "Proxy overhead: TTFT and per-line delivery lag, direct vs farm.proxy vs nginx."

    streams: tuple[int, ...] = setting(
        (9, 64), help="concurrency levels, a comma list (or repeat)", metavar="N,N…", min_length=1
    )
    server: tuple[str, ...] = setting(
        ("uvicorn",),
        help="proxy server(s) to measure side by side: uvicorn, granian-asgi, granian-rsgi "
        "(a comma list, or repeat)",
        metavar="NAME,…",
        min_length=1,
    )
    rounds: int = setting(10, help="measured rounds per path and level", ge=1)
    max_tokens: int = setting(20, help="num_predict per stream", deprecated=("--tokens",), ge=1)
    decode_ms: float = setting(20.0, help="simulated ms per token", ge=0, allow_inf_nan=False)
    rss_streams: int = setting(256, help="slow streams held open for the RSS check", ge=1)
    blob_mib: int = setting(
        1024, help="MiB uploaded through each proxy for the RSS-growth check (0: skip)", ge=0
    )
    profile: Path | None = setting(
        None, help="also profile each proxy with py-spy at 9 streams, writing stacks here"
    )
    floor: bool = setting(
        False, help="also measure a bare TCP relay (bench.tcp_relay): the floor for Python"
    )
    nginx: bool = setting(True, help="skip the nginx column", flag="--no-nginx")
    install: bool = setting(True, help="never apt-get install nginx", flag="--no-install")
    out: Path | None = setting(None, help="write summaries and the full config as JSON here")

    @field_validator("streams", mode="before")
    @classmethod
    def _streams(cls, value: object) -> object:
        return stream_counts(value)

    @field_validator("server", mode="before")
    @classmethod
    def _servers(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        names = tuple(p.strip() for item in value for p in str(item).split(",") if p.strip())
        bad = [n for n in names if n not in SERVERS]
        if bad:
            raise ValueError(f"unknown server {', '.join(bad)}; use {'|'.join(SERVERS)}")
        if len(set(names)) != len(names):
            raise ValueError("a server is given twice")
        return names


def start_proxy(stack: ExitStack, server: str, backend: str, slots: int) -> ProxyServer:
    """Start the proxy on `server` in front of `backend`; `stack` stops it."""
    settings: dict[str, Any] = {"access_log": False, "num_parallel": slots}
    if server == "uvicorn":
        return stack.enter_context(ProxyServer([backend], **settings))
    interface: Interface = "rsgi" if server == "granian-rsgi" else "asgi"
    return stack.enter_context(GranianProxyServer([backend], interface, **settings))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_main(ProxyBenchSettings, _bench, argv)


def _sim_flags(config: ProxyBenchSettings) -> dict[str, Any]:
    # SimSettings fields: SimServer validates them and hands them to the child with `to_argv`.
    return {
        "num_parallel": max([*config.streams, config.rss_streams]),
        "load_ms": 0,
        "decode_ms": config.decode_ms,
        "prefill_ms_per_token": 0,
        "batch_slowdown": 0,
        "jitter": 0,
        "seed": 1,
    }


def _bench(loaded: Loaded[ProxyBenchSettings]) -> int:
    config = loaded.settings
    sim_flags = _sim_flags(config)
    nginx = find_nginx(config.install, loaded.environ) if config.nginx else None
    if nginx is None and config.nginx:
        print("nginx not available (install Debian's nginx-light or nginx): no nginx column")
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    with ExitStack() as stack:
        sim = stack.enter_context(SimServer(**sim_flags))
        proxies = {
            name: start_proxy(stack, name, sim.url, sim_flags["num_parallel"])
            for name in config.server
        }
        paths = {"direct": sim.url, **{name: p.url for name, p in proxies.items()}}
        pids = {name: p.pid for name, p in proxies.items()}
        if config.floor:
            relay = stack.enter_context(TcpRelayServer(sim.port))
            paths[FLOOR], pids[FLOOR] = relay.url, relay.pid
        if nginx is not None:
            ref = stack.enter_context(nginx_proxy(nginx, sim.port))
            paths["nginx"], pids["nginx"] = ref.url, ref.pid
        print(
            f"sim: {sim_flags}; {config.rounds} rounds x {config.max_tokens} tokens per level "
            f"on loopback; uvicorn = python -m farm.proxy as shipped"
        )
        summaries, rows = measure(paths, config.streams, config.rounds, config.max_tokens, pids)
        print("\n".join(side_by_side(summaries)))
        goals, memory = [], {}
        for name, proxy in proxies.items():
            held = rss_with_streams(proxy.pid, proxy.url, config.rss_streams, RSS_TOKENS)
            upload = (
                rss_during_upload(proxy.pid, proxy.url, config.blob_mib, name)
                if config.blob_mib
                else None
            )
            print(
                f"{name} RSS: idle {held.idle_mb:.1f} MB, {held.peak_mb:.1f} MB with "
                f"{held.opened}/{held.wanted} streams open"
                + (
                    f"; {upload.bytes_sent >> 20} MiB upload (HTTP {upload.status}): "
                    f"{upload.base_mb:.1f} -> {upload.peak_mb:.1f} MB"
                    if upload
                    else ""
                )
            )
            rss = held.peak_mb if held.opened == held.wanted else None
            growth = upload.growth_mb if upload and upload.status in (200, 201) else None
            goals.append(server_goals(summaries, name, rss, growth))
            memory[name] = {"streams": asdict(held), "upload": upload and asdict(upload)}
        print("\n".join(goal_table(goals)))
        if config.profile is not None:
            doc["profiles"] = _profile(config, proxies)
    doc |= {
        "config": {**config.model_dump(mode="json"), "sim": sim_flags},
        "summaries": [asdict(s) for s in summaries],
        "goals": [{**asdict(g), "met": g.met()} for g in goals],
        "memory": memory,
        "rows": [
            {"path": r.path, "streams": r.streams, "ttft_s": r.ttft_s, "error": r.error}
            for r in rows
        ],
    }
    if config.out:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        config.out.write_text(json.dumps(doc, indent=2, default=str))
    return 0


def _profile(config: ProxyBenchSettings, proxies: dict[str, ProxyServer]) -> dict[str, Any]:
    assert config.profile is not None
    found = {}
    for name, proxy in proxies.items():
        prof = profile_server(
            name,
            proxy.pid,
            proxy.url,
            config.profile,
            P50_LEVEL,
            config.rounds * 5,
            config.max_tokens,
        )
        if prof is not None:
            print("\n".join(profile_table(prof)))
            found[name] = asdict(prof)
    return found


if __name__ == "__main__":
    sys.exit(main())
