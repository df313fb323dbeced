"""The relay-at-scale rig: a faulty local node, the relay process and many NKN peers.

For one loss level, `measure_relay` starts the local NKN test node (not the real network)
dropping that fraction of the messages in each direction relative to the relay, the relay
(`python -m relay`, in its own process) in front of the proxy, and as many peers as the
largest level needs, each with its own NKN identity (its own Node bridge). It then runs every
(path, level) scenario and records, besides one `StreamRow` per stream, what the node counted
(every message crosses it: it is how messages and bytes are counted) and what the relay's
process tree spent (`ScenarioRecord`).

Peer paths are pluggable (`PATHS`): `seed` speaks the seed's DM API; `fast` asks
`relay.client` for the negotiated fast path, and needs a `RelayClient` that takes `fast=`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.errors import ConfigError
from bench.process_tree import tree_cpu_s, tree_rss_mb
from bench.relay_child import RelayChild, public_key
from bench.scale_probe import Label, StreamRow, body, relayed_one
from bench.scale_settings import Level, Plan
from relay.bridge import BridgeConfig, NknTransport
from relay.client import RelayClient
from relay.localnode.child import LocalNode
from relay.localnode.settings import LocalNodeSettings
from relay.settings import RelaySettings

log = logging.getLogger(__name__)

#: `RelayClient` keywords of each peer path.
PATHS: dict[str, dict[str, Any]] = {"seed": {"fast": False}, "fast": {"fast": True}}
RSS_SAMPLE_S = 0.25


@dataclass(frozen=True, slots=True)
class ScenarioRecord:
    """What the node and the relay's processes showed during one scenario's rounds."""

    path: str
    streams: int
    peers: int
    loss: float
    wall_s: float
    relay_msgs: int  # messages the relay sent (the node's `from` count), before any loss
    relay_bytes: int
    peer_msgs: int  # messages sent to the relay (`to`)
    peer_bytes: int
    dropped: int  # messages the node dropped on purpose, both directions
    relay_cpu_s: float  # the relay's Python process
    relay_tree_cpu_s: float  # with its Node bridge
    relay_rss_peak_mb: float
    relay_tree_rss_peak_mb: float


def client_keywords(path: str) -> dict[str, Any]:
    """The `RelayClient` keywords of `path`; ConfigError when this relay client lacks it."""
    keywords = PATHS[path]
    accepted = inspect.signature(RelayClient).parameters
    missing = [k for k in keywords if k not in accepted]
    if missing:
        raise ConfigError(
            f"--paths {path}: this relay.client has no {', '.join(missing)}= option "
            "(the negotiated fast path is not in this tree); use --paths seed"
        )
    return keywords


def _bridge(rpc_url: str, num_subclients: int, environ: Mapping[str, str]) -> BridgeConfig:
    return BridgeConfig(
        seed_hex=os.urandom(32).hex(),
        rpc_server_addrs=(rpc_url,),
        num_subclients=num_subclients,
        environ=environ,
    )


def node_settings(relay_key: str, loss: float, seed: int) -> LocalNodeSettings:
    """The node for one loss level: `loss` of the messages dropped each way."""
    return LocalNodeSettings(
        port=0, subject_key=relay_key, fault_seed=seed, fault_to_drop=loss, fault_from_drop=loss
    )


def relay_settings(
    work: Path, seed_hex: str, rpc_url: str, proxy_url: str, plan: Plan
) -> RelaySettings:
    """The relay: one worker per stream of the largest level, so that none waits in a queue."""
    most = max(level.streams for level in plan.levels)
    return RelaySettings(
        env_file=work / "relay.env",
        seed_hex=seed_hex,
        nkn_rpc=(rpc_url,),
        num_subclients=plan.num_subclients,
        targets={"ollama": proxy_url},
        workers=most,
        queue=most,
        peer_limit=most,
        # Its per-request log lines would cost CPU the table counts as the relay's.
        log_level="WARNING",
    )


class _Sampler:
    """Peak RSS of the relay's process and of its tree, sampled while a scenario runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.tree_peak_mb = 0.0

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_mb = max(self.peak_mb, psutil.Process(self.pid).memory_info().rss / 1e6)
            self.tree_peak_mb = max(self.tree_peak_mb, tree_rss_mb(self.pid))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(RSS_SAMPLE_S)


def _own_cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


Probe = Callable[[int, int, dict[str, Any]], Awaitable[StreamRow]]


async def _rounds(plan: Plan, level: Level, probe: Probe) -> list[StreamRow]:
    """`plan.rounds` rounds of `level.streams` concurrent streams, stream j on peer j % peers."""
    prompts = [f"scale prompt {plan.seed}-{i}" for i in range(plan.rounds * level.streams)]
    rows: list[StreamRow] = []
    for r in range(plan.rounds):
        batch = prompts[r * level.streams : (r + 1) * level.streams]
        work = [probe(r, j % level.peers, body(p, plan.max_tokens)) for j, p in enumerate(batch)]
        rows += await asyncio.gather(*work)
    return rows


@contextlib.asynccontextmanager
async def _clients(
    peers: Sequence[NknTransport], address: str, path: str, plan: Plan
) -> AsyncIterator[list[RelayClient]]:
    keywords = client_keywords(path)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                RelayClient(
                    p, address, timeout_s=120, idle_timeout_s=plan.idle_timeout_s, **keywords
                )
            )
            for p in peers
        ]
        yield clients


async def _scenario(
    plan: Plan, level: Level, path: str, loss: float, node: LocalNode, relay: RelayChild,
    peers: Sequence[NknTransport],
) -> tuple[list[StreamRow], ScenarioRecord]:  # fmt: skip
    async with _clients(peers[: level.peers], relay.address, path, plan) as clients:
        # One unmeasured stream per client first: it negotiates its path and warms the relay.
        warm = Label(path, level.streams, level.peers, loss, -1, 0)
        await asyncio.gather(*(relayed_one(c, body("warm up", 4), 5, warm) for c in clients))

        async def probe(r: int, peer: int, request: dict[str, Any]) -> StreamRow:
            label = Label(path, level.streams, level.peers, loss, r, peer)
            return await relayed_one(clients[peer], request, plan.lines_expected, label)

        before = await asyncio.to_thread(node.state)
        cpu, tree_cpu = _own_cpu_s(relay.pid), tree_cpu_s(relay.pid)
        sampler = _Sampler(relay.pid)
        sampling = asyncio.create_task(sampler.run())
        started = time.perf_counter()
        try:
            rows = await _rounds(plan, level, probe)
        finally:
            sampling.cancel()
        wall = time.perf_counter() - started
        spent = (_own_cpu_s(relay.pid) - cpu, tree_cpu_s(relay.pid) - tree_cpu)
        after = await asyncio.to_thread(node.state)
    bad = sum(1 for r in rows if r.error is not None)
    log.info(
        "%s path, %d streams from %d peers, loss %g: %d streams (%d with errors) in %.1f s",
        path, level.streams, level.peers, loss, len(rows), bad, wall,
    )  # fmt: skip
    record = ScenarioRecord(
        path, level.streams, level.peers, loss, wall,
        *_deltas(before, after), *spent, sampler.peak_mb, sampler.tree_peak_mb,
    )  # fmt: skip
    return rows, record


def _deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """The node's counts between two of its states: the relay's messages and bytes, the
    peers' messages and bytes, and the messages dropped both ways."""

    def delta(direction: str, key: str) -> int:
        return int(after["traffic"][direction][key]) - int(before["traffic"][direction][key])

    return (
        delta("from", "messages"),
        delta("from", "bytes"),
        delta("to", "messages"),
        delta("to", "bytes"),
        delta("from", "dropped") + delta("to", "dropped"),
    )


async def _measure_all(
    plan: Plan, loss: float, node: LocalNode, relay: RelayChild, environ: Mapping[str, str]
) -> tuple[list[StreamRow], list[ScenarioRecord]]:
    most = max(level.peers for level in plan.levels)
    peers = [NknTransport(_bridge(node.rpc_url, plan.num_subclients, environ)) for _ in range(most)]
    rows: list[StreamRow] = []
    records: list[ScenarioRecord] = []
    try:
        await asyncio.gather(*(p.start() for p in peers))
        for path in plan.paths:
            for level in plan.levels:
                got, record = await _scenario(plan, level, path, loss, node, relay, peers)
                rows += got
                records.append(record)
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
    return rows, records


def measure_relay(
    plan: Plan, loss: float, proxy_url: str, work: Path, environ: Mapping[str, str]
) -> tuple[list[StreamRow], list[ScenarioRecord]]:
    """Every relayed scenario of `plan` at one loss level, on a node and relay of its own."""
    seed_hex = os.urandom(32).hex()
    with LocalNode(settings=node_settings(public_key(seed_hex), loss, plan.seed)) as node:
        settings = relay_settings(work, seed_hex, node.rpc_url, proxy_url, plan)
        with RelayChild(settings, work / f"relay-loss{loss:g}.log", environ) as relay:
            return asyncio.run(_measure_all(plan, loss, node, relay, environ))
