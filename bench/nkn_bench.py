"""NKN relay benchmark: what the relay adds to TTFT and total time, and what batching saves.

`python -m bench.nkn_bench` starts the simulator, the farm proxy in front of it and the local
NKN test node (not the real NKN network), then runs the same seeded generate requests at 1 and
9 concurrent streams directly against the proxy and through relay + peer client over NKN
(the real nkn-sdk via the bridge). It also counts DMs per 100 lines with batching on (24 lines
/ 80 ms) and off (one line per DM). Raw rows and a summary (schema version, full config) are
written under `results/nkn_bench/<utc time>/`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import field_validator

from bench.quantiles import quantile
from bench.settings import stream_counts
from farm.proxy.child import ProxyServer
from farm.settings import Loaded, ServiceSettings, run_main, setting
from farm.sim.child import SimServer
from relay.bridge import BridgeConfig, NknTransport
from relay.client import RelayClient
from relay.errors import ClientError
from relay.localnode.child import LocalNode
from relay.memory import MemoryNetwork
from relay.server import RelayServer
from relay.settings import RelaySettings
from relay.transport import Transport

SCHEMA_VERSION = 1
MODEL = "gemma3:4b"


class NknBenchSettings(ServiceSettings):
    """What to run; every field lands in the summary."""

    prog = "python -m bench.nkn_bench"
    summary = "What the NKN relay adds to TTFT and total time, and what batching saves."

    streams: tuple[int, ...] = setting(
        (1, 9), help="concurrency levels, a comma list", metavar="N,N…", min_length=1
    )
    rounds: int = setting(4, help="rounds per level", ge=1)
    decode_ms: float = setting(20.0, help="simulated ms per token", ge=0, allow_inf_nan=False)
    max_tokens: int = setting(200, help="num_predict per request", ge=1)
    batch_lines: int = setting(24, help="relay batch size, lines", ge=1)
    batch_ms: int = setting(80, help="relay batch window, ms", ge=0)
    # 1 is what a relay on the local node gets by default.
    num_subclients: int = setting(
        1, help="NKN sub-clients per bridge (the seed's relay: 2)", deprecated=("--subclients",),
        ge=1,
    )  # fmt: skip
    seed: int = setting(1, help="seed of the prompts and the simulator")
    network: Literal["nkn", "memory"] = setting(
        "nkn", help="memory: the relay engine alone, without the NKN transport"
    )
    out_dir: Path = setting(Path("results/nkn_bench"), help="parent of the timestamped result")

    @field_validator("streams", mode="before")
    @classmethod
    def _streams(cls, value: object) -> object:
        return stream_counts(value)


@dataclass(frozen=True, slots=True)
class Row:
    """One measured request (times in seconds from sending it, perf_counter clock)."""

    mode: str  # "direct" (HTTP to the proxy) or "nkn" (relay + peer client over NKN)
    batching: str  # "on", "off", or "-" for direct
    streams: int
    round: int
    ttft_s: float | None
    total_s: float | None
    lines: int
    dms: int
    dm_bytes: int
    relay_t_ms: int | None
    error: str | None


def prompts(config: NknBenchSettings, count: int) -> list[str]:
    """Seeded prompts, built before any clock starts."""
    return [f"bench prompt {config.seed}-{i}: tell me about llamas" for i in range(count)]


def _body(config: NknBenchSettings, prompt: str) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "options": {"num_predict": config.max_tokens}}


async def direct_one(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], n: int, r: int
) -> Row:
    """One streamed generate straight to the proxy."""
    sent = time.perf_counter()
    first: float | None = None
    lines = 0
    async with http.stream("POST", f"{url}/api/generate", json=body) as response:
        async for line in response.aiter_lines():
            if line.strip():
                lines += 1
                first = first or time.perf_counter()
    total = time.perf_counter() - sent
    ttft = None if first is None else first - sent
    return Row("direct", "-", n, r, ttft, total, lines, 0, 0, None, None)


async def nkn_one(client: RelayClient, body: dict[str, Any], batching: str, n: int, r: int) -> Row:
    """One streamed generate through the relay over NKN."""
    stream = client.stream(path="/api/generate", json=body)
    error = None
    try:
        async with stream:
            await stream.lines()
    except ClientError as exc:
        error = str(exc)
    res = stream.result
    end = res.end
    return Row(
        "nkn", batching, n, r, res.first_line_s, res.total_s, res.lines, len(res.frames),
        res.dm_bytes, None if end is None else end.t_ms, error,
    )  # fmt: skip


def _bridge(node: LocalNode, num_subclients: int, environ: Mapping[str, str]) -> BridgeConfig:
    return BridgeConfig(
        seed_hex=os.urandom(32).hex(),
        rpc_server_addrs=(node.rpc_url,),
        num_subclients=num_subclients,
        environ=environ,
    )


@asynccontextmanager
async def relay_over_nkn(
    node: LocalNode,
    config: RelaySettings,
    environ: Mapping[str, str],
    network: str = "nkn",
    num_subclients: int = 1,
) -> AsyncIterator[RelayClient]:
    """A relay and a peer client, each with its own bridge, on the local node.

    With `network="memory"` both sit on an in-memory network instead: what the relay engine
    costs by itself, to tell it apart from what the NKN path costs. `environ` is the bridges'
    (Node's) environment.
    """
    relay: Transport
    peer: Transport
    if network == "memory":
        memory = MemoryNetwork()
        relay, peer = memory.transport("relay"), memory.transport("peer")
    else:
        relay = NknTransport(_bridge(node, num_subclients, environ))
        peer = NknTransport(_bridge(node, num_subclients, environ))
    await asyncio.gather(relay.start(), peer.start())
    task = asyncio.create_task(RelayServer(config, relay).serve())
    try:
        async with RelayClient(peer, relay.address, timeout_s=120) as client:
            await client.ping()
            yield client
    finally:
        task.cancel()
        await asyncio.wait({task})
        await asyncio.gather(relay.close(), peer.close())


Probe = Callable[[dict[str, Any], int, int], Awaitable[Row]]


async def sweep(config: NknBenchSettings, probe: Probe, streams: int) -> list[Row]:
    """`rounds` rounds of `streams` concurrent requests."""
    rows: list[Row] = []
    texts = prompts(config, config.rounds * streams)
    for r in range(config.rounds):
        batch = texts[r * streams : (r + 1) * streams]
        rows += await asyncio.gather(*(probe(_body(config, t), streams, r) for t in batch))
    return rows


async def run(
    config: NknBenchSettings, proxy_url: str, node: LocalNode, environ: Mapping[str, str]
) -> list[Row]:
    """Every measurement; direct and NKN sweeps alternate per concurrency level."""
    on = RelaySettings(
        targets={"ollama": proxy_url}, workers=16,
        batch_lines=config.batch_lines, batch_ms=config.batch_ms,
    )  # fmt: skip
    off = on.model_copy(update={"batch_lines": 1, "batch_ms": 0})
    over = (environ, config.network, config.num_subclients)
    rows: list[Row] = []
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as http:
        await direct_one(http, proxy_url, _body(config, "warm up"), 1, -1)  # loads the model

        async def direct(body: dict[str, Any], n: int, r: int) -> Row:
            return await direct_one(http, proxy_url, body, n, r)

        async with relay_over_nkn(node, on, *over) as client:

            async def via_nkn(body: dict[str, Any], n: int, r: int) -> Row:
                return await nkn_one(client, body, "on", n, r)

            await via_nkn(_body(config, "warm up"), 1, -1)
            for streams in config.streams:
                rows += await sweep(config, direct, streams)
                rows += await sweep(config, via_nkn, streams)
        async with relay_over_nkn(node, off, *over) as client:

            async def unbatched(body: dict[str, Any], n: int, r: int) -> Row:
                return await nkn_one(client, body, "off", n, r)

            for streams in config.streams:
                rows += await sweep(config, unbatched, streams)
    return rows


def _p(values: Sequence[float], q: float) -> float | None:
    """The q-quantile, None (JSON null) when there are no values."""
    value = quantile(values, q)
    return None if math.isnan(value) else value


def summarize(rows: Sequence[Row], streams: Sequence[int]) -> dict[str, Any]:
    """Pure: quantiles per group (errors counted, never in quantiles), deltas and DM ratios."""
    groups: dict[str, Any] = {}
    for mode, batching in (("direct", "-"), ("nkn", "on"), ("nkn", "off")):
        for n in streams:
            sel = [r for r in rows if (r.mode, r.batching, r.streams) == (mode, batching, n)]
            good = [r for r in sel if r.error is None and r.ttft_s is not None]
            ttft = [r.ttft_s for r in good if r.ttft_s is not None]
            total = [r.total_s for r in good if r.total_s is not None]
            lines = sum(r.lines for r in good)
            groups[f"{mode}/{batching}/{n}"] = {
                "requests": len(sel),
                "errors": len(sel) - len(good),
                "ttft_p50_s": _p(ttft, 0.5),
                "ttft_p90_s": _p(ttft, 0.9),
                "total_p50_s": _p(total, 0.5),
                "lines": lines,
                "dms_per_100_lines": 100 * sum(r.dms for r in good) / lines if lines else None,
            }
    added = {}
    for n in streams:
        direct, nkn = groups[f"direct/-/{n}"], groups[f"nkn/on/{n}"]
        if direct["ttft_p50_s"] is not None and nkn["ttft_p50_s"] is not None:
            added[str(n)] = {
                "added_ttft_p50_ms": 1000 * (nkn["ttft_p50_s"] - direct["ttft_p50_s"]),
                "added_total_p50_ms": 1000 * (nkn["total_p50_s"] - direct["total_p50_s"]),
            }
    ratio = {}
    for n in streams:
        on, off = groups[f"nkn/on/{n}"], groups[f"nkn/off/{n}"]
        if on["dms_per_100_lines"] and off["dms_per_100_lines"]:
            ratio[str(n)] = off["dms_per_100_lines"] / on["dms_per_100_lines"]
    return {"groups": groups, "added": added, "batching_dm_ratio": ratio}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the NKN relay benchmark and print its summary."""
    return run_main(NknBenchSettings, _bench, argv)


def _bench(loaded: Loaded[NknBenchSettings]) -> int:
    config = loaded.settings
    most = max(config.streams)
    with (
        SimServer(
            num_parallel=most, load_ms=0, decode_ms=config.decode_ms, seed=config.seed
        ) as sim,
        ProxyServer(backends=[sim.url], num_parallel=most, access_log=False) as proxy,
        LocalNode() as node,
    ):
        rows = asyncio.run(run(config, proxy.url, node, loaded.environ))
    summary = summarize(rows, config.streams)
    out = config.out_dir / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.jsonl").write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in rows))
    document = {
        "schema_version": SCHEMA_VERSION,
        "config": config.model_dump(mode="json"),
        "network": (
            "local NKN test node (loopback)" if config.network == "nkn" else "in-memory network"
        )
        + ", simulator behind the farm proxy",
        **summary,
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2))
    print(json.dumps(document, indent=2))
    print(f"raw rows and summary: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
