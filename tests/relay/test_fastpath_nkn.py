"""The fast path and stock peers through the real nkn-sdk on the local node, with the simulator.

Stock peers (an unmodified nkn-sdk `Client` or `MultiClient` in Node) get the seed's frames,
byte for byte what the seed's encoder writes; a fast-path peer's 9 streams share messages and
stay exact when the node drops, duplicates, delays and reorders messages both ways.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from farm.sim.child import SimServer
from relay.bridge import BridgeConfig, NknTransport
from relay.bridge.config import BRIDGE_DIR
from relay.client import RelayClient
from relay.frames import HttpRequest, HttpSpec, decode, encode
from relay.localnode.child import LocalNode
from relay.localnode.settings import LocalNodeSettings
from relay.server import RelayServer
from tests.relay.harness import config_for

pytestmark = pytest.mark.anyio
MODEL = "gemma3:4b"
STREAMS = 9
STOCK_PEER = Path(__file__).parent / "bridge" / "stock_peer.js"
#: The seed's frames and their exact keys, in the seed's order.
SEED_KEYS = {
    "relay.response.begin": ["event", "id", "ok", "status", "headers", "ts"],
    "relay.response.lines": ["event", "id", "lines"],
    "relay.response.keepalive": ["event", "id", "ts"],
    "relay.response.end": [
        "event", "id", "ok", "bytes", "last_seq", "lines", "eot_seen", "done_seen",
        "truncated", "error", "t_ms",
    ],
    "relay.response": [
        "event", "id", "ok", "status", "headers", "json", "body_b64", "truncated", "error",
    ],
}  # fmt: skip
RELAY_SEED = os.urandom(32).hex()


def pubkey(seed_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex)).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(
        num_parallel=STREAMS + 1, load_ms=0, decode_ms=5, seed=5, response_tokens="1000000"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def node() -> Iterator[LocalNode]:
    with LocalNode() as local:
        yield local


@pytest.fixture(scope="module")
def lossy_node() -> Iterator[LocalNode]:
    """10% loss, 5% duplicates, 5% delay and 10% reordering both ways around the relay."""
    faults = {
        f"fault_{way}_{kind}": rate
        for way in ("to", "from")
        for kind, rate in (("drop", 0.1), ("duplicate", 0.05), ("delay", 0.05), ("reorder", 0.1))
    }
    settings = LocalNodeSettings(subject_key=pubkey(RELAY_SEED), fault_seed=17, **faults)
    with LocalNode(settings=settings) as local:
        yield local


def bridge(node: LocalNode, seed_hex: str | None = None, **changes: Any) -> BridgeConfig:
    return BridgeConfig(
        seed_hex=seed_hex or os.urandom(32).hex(),
        num_subclients=1,
        rpc_server_addrs=(node.rpc_url,),
        ready_timeout_s=20.0,
        restart_backoff_min_s=0.1,
        reconnect_interval_min_ms=200,
        **changes,
    )


@dataclass
class Relay:
    transport: NknTransport
    server: RelayServer


@asynccontextmanager
async def relay_on(node: LocalNode, sim: SimServer, **changes: Any) -> AsyncIterator[Relay]:
    # As `python -m relay` runs it: the bare address too (RelaySettings.bridge_config).
    transport = NknTransport(bridge(node, RELAY_SEED, original_client=True))
    await transport.start()
    server = RelayServer(config_for(sim.url, **changes), transport)
    task = asyncio.create_task(server.serve())
    try:
        yield Relay(transport, server)
    finally:
        task.cancel()
        await asyncio.wait({task})
        await transport.close()


@asynccontextmanager
async def peer_of(node: LocalNode, relay: Relay, **options: Any) -> AsyncIterator[RelayClient]:
    transport = NknTransport(bridge(node))
    await transport.start()
    try:
        async with RelayClient(transport, relay.transport.address, **options) as client:
            yield client
    finally:
        await transport.close()


def _body(n: int, i: int = 0) -> dict[str, object]:
    return {"model": MODEL, "prompt": f"stream {i}", "options": {"num_predict": n}}


def _frame(rid: str, path: str, *, stream: bool, body: dict[str, object] | None = None) -> str:
    method = "POST" if body is not None else "GET"
    spec = HttpSpec(path, method, service="ollama", json=body, stream=stream)
    return encode(HttpRequest(rid, spec))


async def stock_peer(node: LocalNode, dest: str, kind: str, *frames: str) -> dict[str, Any]:
    """Run stock_peer.js: an unmodified nkn-sdk peer sending `frames` to `dest`."""
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.fail("Node.js is required to run nkn-sdk")
    env = {**os.environ, "NODE_PATH": str(BRIDGE_DIR / "node_modules")}
    args = [node_bin, str(STOCK_PEER), node.rpc_url, dest, kind, *frames]
    done = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, env=env, timeout=40, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("kind", ["client", "multi"], ids=["single-client", "multiclient"])
async def test_a_stock_peer_gets_the_seeds_frames_byte_for_byte(node, sim, kind) -> None:
    async with relay_on(node, sim) as relay:
        frames = (
            _frame("tags", "/api/tags", stream=False),
            _frame("gen", "/api/generate", stream=True, body=_body(40)),
        )
        got = await stock_peer(node, relay.transport.address, kind, *frames)
    assert got["acked"] == 2  # the relay ACKed each DM to the stock sender
    payloads = [dm["data"] for dm in got["dms"]]
    for payload in payloads:
        wire = json.loads(payload)
        assert list(wire) == SEED_KEYS[wire["event"]], payload
        assert encode(decode(payload)) == payload
    tags = next(json.loads(p) for p in payloads if json.loads(p)["id"] == "tags")
    assert MODEL in [m["name"] for m in tags["json"]["models"]]
    lines = [e for p in payloads if '"relay.response.lines"' in p for e in json.loads(p)["lines"]]
    assert [e["seq"] for e in sorted(lines, key=lambda e: e["seq"])] == list(range(1, 42))
    end = next(json.loads(p) for p in payloads if '"relay.response.end"' in p)
    assert end["ok"] and end["done_seen"] and end["last_seq"] == 41
    # Answers come from the address the peer wrote to (the bare one, for a plain Client).
    assert {dm["src"] for dm in got["dms"]} == {relay.transport.address}


async def _nine_streams(client: RelayClient, n: int) -> list[list[int]]:
    async def one(i: int) -> list[int]:
        async with client.stream(path="/api/generate", json=_body(n, i)) as s:
            lines = await s.lines()
        assert json.loads(lines[-1].line)["done"] is True
        assert s.result.end is not None and s.result.end.ok
        return [line.seq for line in lines]

    return list(await asyncio.gather(*(one(i) for i in range(STREAMS))))


async def test_nine_fast_streams_over_nkn_share_messages_and_arrive_in_order(node, sim) -> None:
    async with relay_on(node, sim) as relay, peer_of(node, relay, fast=True) as client:
        assert await client.negotiate()
        before = client.stats.dms_in
        seqs = await _nine_streams(client, 100)
        dms = client.stats.dms_in - before
    assert seqs == [list(range(1, 102))] * STREAMS
    # At least 10x fewer DMs than one per line.
    assert dms * 100 / (STREAMS * 101) <= 10, dms


async def test_fast_streams_over_a_lossy_node_are_exact(lossy_node, sim) -> None:
    async with (
        relay_on(lossy_node, sim, mux_rto_ms=300) as relay,
        peer_of(lossy_node, relay, fast=True, resend_s=0.5) as client,
    ):
        seqs = await _nine_streams(client, 80)
    assert seqs == [list(range(1, 82))] * STREAMS
    stats = client.stats  # what the faults cost: duplicates dropped, resends asked for
    assert stats.mux_dup_in + stats.resend_asks + stats.requests_resent > 0, stats
    traffic = lossy_node.state()["traffic"]
    # The node did fault messages both ways.
    assert traffic["from"]["dropped"] and traffic["to"]["dropped"], traffic


async def test_a_cancelled_fast_stream_frees_the_simulator_slot(node, sim) -> None:
    before = sim.state()["requests"]["cancelled"]
    async with relay_on(node, sim) as relay, peer_of(node, relay, fast=True) as client:
        async with client.stream(path="/api/generate", json=_body(100_000)) as s:
            async for _ in s:
                break
        await asyncio.to_thread(
            sim.wait_for,
            lambda st: (
                st["requests"]["cancelled"] == before + 1 and st["models"][MODEL]["active"] == 0
            ),
            10.0,
        )
    assert s.result.fast


async def test_a_vanished_fast_path_peer_frees_the_simulator_slot(node, sim) -> None:
    # The peer's NKN client goes away without a relay.cancel: only its missing acks tell.
    before = sim.state()["requests"]["cancelled"]
    async with relay_on(node, sim, ack_timeout_s=2.0, mux_rto_ms=300) as relay:
        transport = NknTransport(bridge(node))
        await transport.start()
        client = RelayClient(transport, relay.transport.address, fast=True)
        await client.__aenter__()
        stream = await client.stream(path="/api/generate", json=_body(10**6)).__aenter__()
        async for _ in stream:
            break
        await transport.close()
        await asyncio.to_thread(
            sim.wait_for,
            lambda st: (
                st["requests"]["cancelled"] == before + 1 and st["models"][MODEL]["active"] == 0
            ),
            10.0,
        )
        await client.aclose()
    assert stream.result.fast
