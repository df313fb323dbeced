"""End to end through the real nkn-sdk: relay and peer client on the local NKN node + simulator."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from farm.sim.child import SimServer
from relay.bridge import BridgeConfig, NknTransport
from relay.client import RelayClient
from relay.frames import HttpRequest, HttpSpec, decode, encode
from relay.localnode.child import LocalNode
from relay.server import RelayServer
from tests.relay.harness import config_for
from tests.relay.upstream import Upstream

pytestmark = pytest.mark.anyio
MODEL = "gemma3:4b"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalNode]:
    with LocalNode() as local:
        yield local


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    # Answers end only at num_predict or when the upstream closes (never by themselves).
    with SimServer(
        num_parallel=2, load_ms=0, decode_ms=5, seed=3, response_tokens="1000000"
    ) as server:
        yield server


def bridge_config(node: LocalNode) -> BridgeConfig:
    """A fresh identity on the local node with fast restarts."""
    return BridgeConfig(
        seed_hex=os.urandom(32).hex(),
        rpc_server_addrs=(node.rpc_url,),
        ready_timeout_s=20.0,
        restart_backoff_min_s=0.1,
        reconnect_interval_min_ms=200,
    )


@dataclass
class Nkn:
    relay: NknTransport
    server: RelayServer
    client: RelayClient


@asynccontextmanager
async def over_nkn(
    node: LocalNode, sim: SimServer, targets: dict[str, str] | None = None, **changes: object
) -> AsyncIterator[Nkn]:
    relay = NknTransport(bridge_config(node))
    peer = NknTransport(bridge_config(node))
    await asyncio.gather(relay.start(), peer.start())
    config = config_for(sim.url, targets={"ollama": sim.url, **(targets or {})}, **changes)
    server = RelayServer(config, relay)
    task = asyncio.create_task(server.serve())
    try:
        async with RelayClient(peer, relay.address, timeout_s=30, idle_timeout_s=15) as client:
            yield Nkn(relay, server, client)
    finally:
        task.cancel()
        await asyncio.wait({task})
        await asyncio.gather(relay.close(), peer.close())


def _body(n: int) -> dict[str, object]:
    return {"model": MODEL, "prompt": "hello over nkn", "options": {"num_predict": n}}


async def test_streamed_generate_over_nkn_is_complete_in_order(node, sim) -> None:
    async with over_nkn(node, sim) as nkn:
        pong, _ = await nkn.client.ping()
        info = await nkn.client.info()
        tags = await nkn.client.request(path="/api/tags")
        async with nkn.client.stream(path="/api/generate", json=_body(60)) as s:
            lines = await s.lines()
    assert pong.addr == nkn.relay.address and info.services == ("ollama",)
    assert MODEL in [m["name"] for m in tags.json["models"]]
    chunks = [json.loads(line.line) for line in lines]
    assert chunks[-1]["done"] is True and chunks[-1]["eval_count"] == len(chunks) - 1
    end = s.result.end
    assert end is not None and end.ok and end.done_seen and end.last_seq == len(lines)


async def test_a_peer_that_acknowledges_over_nkn_is_never_cut(node, sim) -> None:
    # 300 tokens take about 1.5 s, three ACK timeouts: each ACK must come back through NKN.
    async with over_nkn(node, sim, ack_timeout_s=0.5) as nkn:
        async with nkn.client.stream(path="/api/generate", json=_body(300)) as s:
            lines = await s.lines()
    assert json.loads(lines[-1].line)["done"] is True
    assert s.result.end is not None and s.result.end.ok


async def test_cancel_over_nkn_frees_the_simulator_slot(node, sim) -> None:
    before = sim.state()["requests"]["cancelled"]
    async with over_nkn(node, sim) as nkn:
        async with nkn.client.stream(path="/api/generate", json=_body(100_000)) as s:
            async for _ in s:
                break
        await asyncio.to_thread(
            sim.wait_for,
            lambda st: (
                st["requests"]["cancelled"] == before + 1 and st["models"][MODEL]["active"] == 0
            ),
            10.0,
        )


async def test_relay_bridge_killed_mid_stream_recovers(node, sim) -> None:
    async with Upstream() as up, over_nkn(node, sim, targets={"slow": up.url}) as nkn:
        pid = nkn.relay.bridge_pid
        assert pid is not None
        lines = []
        # 200 lines over about 2 s: the bridge dies after the first and restarts meanwhile.
        async with nkn.client.stream(service="slow", path="/stream?n=200&delay=0.01") as s:
            async for line in s:
                lines.append(line)
                if len(lines) == 1:
                    os.kill(pid, signal.SIGKILL)
        assert nkn.relay.restarts >= 1 and nkn.relay.bridge_pid != pid
        again = await nkn.client.request(path="/api/tags")
    # DMs queued while the bridge restarted were delivered: nothing lost, in order.
    assert [line.seq for line in lines] == list(range(1, 202))
    assert s.result.end is not None and s.result.end.done_seen
    assert again.ok


async def test_vanished_peer_over_nkn_frees_the_simulator_slot_within_the_ack_timeout(
    node, sim
) -> None:
    # The peer's NKN client goes away without a relay.cancel: only its missing ACKs tell.
    before = sim.state()["requests"]["cancelled"]
    relay = NknTransport(bridge_config(node))
    peer = NknTransport(bridge_config(node))
    await asyncio.gather(relay.start(), peer.start())
    server = RelayServer(config_for(sim.url, ack_timeout_s=2.0), relay)
    task = asyncio.create_task(server.serve())
    try:
        spec = HttpSpec("/api/generate", "POST", service="ollama", json=_body(10**6), stream=True)
        await peer.send(relay.address, encode(HttpRequest("gone-1", spec)))
        first = await asyncio.wait_for(anext(peer.incoming()), 15)
        assert type(decode(first.payload)).__name__ == "ResponseBegin", first.payload
        await peer.close()
        await asyncio.to_thread(
            sim.wait_for,
            lambda st: (
                st["requests"]["cancelled"] == before + 1 and st["models"][MODEL]["active"] == 0
            ),
            10.0,
        )
        assert server.in_flight == 0 or await _drained(server)
    finally:
        task.cancel()
        await asyncio.wait({task})
        await relay.close()


async def _drained(server: RelayServer) -> bool:
    async with asyncio.timeout(5):
        while server.in_flight:
            await asyncio.sleep(0.01)
    return True
