"""Fairness benchmark: one person's conversation beside an agent's thirty streams.

Run as `python -m bench.fairness` (`invoke fair-bench`). On loopback, against the simulator
with `--num-parallel` slots (4), in one run:

* tenant A alone: one stream at a time, `--a-requests` turns; its TTFT is the baseline;
* A beside tenant B, who keeps `--b-streams` (30) streams open the whole time, through a
  proxy with the fair queue on, and through one with it off (first come, first served, as
  Ollama queues) — A's TTFT p95 in each, as a ratio to A alone (goal: fair <= 1.5x);
* the cost of keys and the fair queue on the hot path: added TTFT p50 at 9 streams over
  direct (on a simulator with a slot per stream, so no queue wait hides it), through a proxy
  with keys and the fair queue and through one without keys (goal: within 0.3 ms),
  interleaved round by round (`bench.proxy_streams`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.proxy_streams import client_session, generate_body, measure
from bench.quantiles import percentiles
from farm.keys.records import Limits
from farm.keys.store import KeyStore
from farm.proxy.child import ProxyServer
from farm.settings import Loaded, ServiceSettings, run_main, setting
from farm.sim.child import SimServer

SCHEMA_VERSION = 1


class FairBenchSettings(ServiceSettings):
    """What the fairness benchmark runs; written in full beside its results (`--out`)."""

    prog = "python -m bench.fairness"
    summary = "Fair slots: a light tenant's TTFT beside a heavy one, fair queue on vs off."

    num_parallel: int = setting(4, help="the simulator's slots", ge=1)
    b_streams: int = setting(30, help="streams tenant B keeps open", ge=1)
    a_requests: int = setting(12, help="turns tenant A takes, one at a time", ge=2)
    a_tokens: int = setting(8, help="num_predict of each of A's turns", ge=1)
    b_tokens: int = setting(20, help="num_predict of each of B's requests", ge=1)
    overhead_streams: int = setting(9, help="streams of the hot-path overhead check", ge=1)
    overhead_rounds: int = setting(30, help="rounds of the hot-path overhead check", ge=1)
    decode_ms: float = setting(25.0, help="simulated ms per decode step", ge=0)
    out: Path | None = setting(None, help="write results and the full config as JSON here")


@dataclass(frozen=True, slots=True)
class TenantRun:
    """A's turns in one scenario."""

    scenario: str
    ttft_p50_ms: float
    ttft_p95_ms: float
    turns: int
    errors: int
    b_requests: int


async def _turn(http: aiohttp.ClientSession, url: str, key: str, tokens: int, i: int) -> float:
    body = generate_body(f"turn {i}", tokens)
    start = time.perf_counter()
    ttft = float("nan")
    async with http.post(
        url + "/api/generate", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {await resp.text()}")
        async for _ in resp.content:
            if ttft != ttft:  # NaN: first line
                ttft = time.perf_counter() - start
    return ttft


async def _tenant_b(
    http: aiohttp.ClientSession, url: str, key: str, tokens: int, stop: asyncio.Event
) -> int:
    done = 0
    while not stop.is_set():
        try:
            await _turn(http, url, key, tokens, done)
            done += 1
        except (RuntimeError, aiohttp.ClientError):
            await asyncio.sleep(0.05)
    return done


async def _scenario(name: str, url: str, keys: dict[str, str], cfg: FairBenchSettings) -> TenantRun:
    stop = asyncio.Event()
    async with client_session() as http:
        heavy = []
        if name != "A alone":
            heavy = [
                asyncio.create_task(_tenant_b(http, url, keys["b"], cfg.b_tokens, stop))
                for _ in range(cfg.b_streams)
            ]
            await asyncio.sleep(1.0)  # B's streams fill the slots and the queue first
        ttfts: list[float] = []
        errors = 0
        for i in range(cfg.a_requests + 1):
            try:
                ttft = await _turn(http, url, keys["a"], cfg.a_tokens, i)
                if i:  # the first turn opens the connection; not counted
                    ttfts.append(ttft)
            except (RuntimeError, aiohttp.ClientError):
                errors += 1
        stop.set()
        b_done = sum(await asyncio.gather(*heavy)) if heavy else 0
    p50, p95 = percentiles(ttfts, (0.5, 0.95))
    return TenantRun(name, p50 * 1000, p95 * 1000, len(ttfts), errors, b_done)


def _keys(db: Path) -> dict[str, str]:
    store = KeyStore(db)
    try:
        return {name: store.add(name, Limits()) for name in ("a", "b", "bench")}
    finally:
        store.close()


def _bench(loaded: Loaded[FairBenchSettings]) -> int:
    cfg = loaded.settings
    sim: dict[str, Any] = {
        "num_parallel": cfg.num_parallel,
        "load_ms": 0,
        "decode_ms": cfg.decode_ms,
        "seed": 1,
        "response_tokens": "100000",  # every answer as long as its num_predict
    }
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        keys = _keys(tmp / "keys.db")
        backend = stack.enter_context(SimServer(**sim)).url
        common: dict[str, Any] = {"access_log": False, "num_parallel": cfg.num_parallel}
        fair = stack.enter_context(ProxyServer([backend], keys_db=tmp / "keys.db", **common))
        fcfs = stack.enter_context(
            ProxyServer([backend], keys_db=tmp / "keys.db", fair_queue=False, **common)
        )
        runs = [
            asyncio.run(_scenario("A alone", fair.url, keys, cfg)),
            asyncio.run(_scenario("A beside B, fair queue", fair.url, keys, cfg)),
            asyncio.run(_scenario("A beside B, first come first served", fcfs.url, keys, cfg)),
        ]
        # The hot-path check gets a backend with a slot per stream, so that TTFT measures the
        # proxy's own work, not a queue wait hundreds of times larger; and fresh proxies (in
        # the first, A's and B's between-turn holds would still keep slots from the bench).
        wide = {**sim, "num_parallel": cfg.overhead_streams}
        backend = stack.enter_context(SimServer(**wide)).url
        common["num_parallel"] = cfg.overhead_streams
        keyed = stack.enter_context(ProxyServer([backend], keys_db=tmp / "keys.db", **common))
        plain = stack.enter_context(ProxyServer([backend], **common))
        paths = {"direct": backend, "keys+fair": keyed.url, "no keys": plain.url}
        headers = {"keys+fair": {"Authorization": f"Bearer {keys['bench']}"}}
        summaries, _ = measure(
            paths, [cfg.overhead_streams], cfg.overhead_rounds, cfg.a_tokens, headers=headers
        )
    _print(runs, summaries)
    if cfg.out is not None:
        cfg.out.mkdir(parents=True, exist_ok=True)
        doc = {
            "schema": SCHEMA_VERSION,
            "config": cfg.model_dump(mode="json"),
            "tenants": [asdict(r) for r in runs],
            "overhead": [asdict(s) for s in summaries],
        }
        (cfg.out / "fairness.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _print(runs: Sequence[TenantRun], summaries: Sequence[Any]) -> None:
    alone = runs[0].ttft_p95_ms
    print(f"{'scenario':<38} {'A TTFT p50':>11} {'A TTFT p95':>11} {'vs alone':>9} {'B done':>7}")
    for r in runs:
        print(
            f"{r.scenario:<38} {r.ttft_p50_ms:>9.1f}ms {r.ttft_p95_ms:>9.1f}ms "
            f"{r.ttft_p95_ms / alone:>8.2f}x {r.b_requests:>7}"
            + (f"  ({r.errors} errors)" if r.errors else "")
        )
    direct = next(s for s in summaries if s.path == "direct").ttft_p50_ms
    print(f"\nhot path at {summaries[0].streams} streams: TTFT p50 added over direct")
    added = {s.path: s.ttft_p50_ms - direct for s in summaries if s.path != "direct"}
    for path, ms in added.items():
        print(f"  {path:<10} +{ms:.2f} ms")
    print(f"  keys+fair - no keys: {added['keys+fair'] - added['no keys']:+.2f} ms (goal <= 0.3)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_main(FairBenchSettings, _bench, argv)


if __name__ == "__main__":
    sys.exit(main())
