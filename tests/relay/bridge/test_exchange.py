"""DMs between two NknTransports on the local node: the real nkn-sdk on both ends.

One pair of transports serves the whole module (each bridge start costs a Node process).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.bridge import BridgeError, MessageTooLargeError, NknTransport, QueueFullError
from relay.bridge.config import BRIDGE_DIR
from relay.localnode.child import LocalNode
from relay.transport import Incoming
from tests.relay.bridge.support import make_config, receive, running

pytestmark = pytest.mark.anyio

Pair = tuple[NknTransport, NknTransport]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    # Module scope, so the module-scoped `pair` below can live on one event loop.
    return "asyncio"


@pytest.fixture(scope="module")
async def pair(local_node: LocalNode) -> AsyncIterator[Pair]:
    async with running(make_config(local_node)) as a, running(make_config(local_node)) as b:
        yield a, b


async def test_two_transports_exchange_dms_both_ways(pair: Pair) -> None:
    a, b = pair
    assert a.address != b.address
    await a.send(b.address, '{"event":"relay.ping"}')
    [at_b] = await receive(b, 1)
    await b.send(a.address, '{"event":"relay.pong","text":"héllo ✓"}')
    [at_a] = await receive(a, 1)
    assert at_b == Incoming(a.address, '{"event":"relay.ping"}')
    assert at_a == Incoming(b.address, '{"event":"relay.pong","text":"héllo ✓"}')


async def test_send_returns_a_future_that_completes_once_the_bridge_wrote_the_dm(
    pair: Pair,
) -> None:
    a, b = pair
    sending = await a.send(b.address, "tracked")
    await asyncio.wait_for(sending, 10)
    [got] = await receive(b, 1)
    assert got.payload == "tracked"


async def test_burst_of_dms_arrives_exactly_once_each(pair: Pair) -> None:
    # Every subclient sends a copy; the receiving MultiClient must deliver one. Order across
    # subclient paths is not promised by NKN, which is why relay frames carry `seq`.
    a, b = pair
    for i in range(20):
        await a.send(b.address, f'{{"seq":{i}}}')
    got = await receive(b, 20)
    await a.send(b.address, "last")
    [last] = await receive(b, 1)
    assert sorted(m.payload for m in got) == sorted(f'{{"seq":{i}}}' for i in range(20))
    assert last.payload == "last"  # no late duplicate of the burst came before it


@pytest.mark.parametrize("size", [1_000_000, 3_900_000], ids=["1MB", "3.9MB"])
async def test_large_dm_arrives_intact(pair: Pair, size: int) -> None:
    a, b = pair
    payload = os.urandom(size // 2).hex()
    await b.send(a.address, payload)
    [got] = await receive(a, 1, timeout=30)
    assert got == Incoming(b.address, payload)


async def test_dm_over_nkn_limit_is_refused_at_send(pair: Pair) -> None:
    a, _ = pair
    with pytest.raises(MessageTooLargeError, match="4100000 bytes exceeds"):
        await a.send(a.address, "x" * 4_100_000)
    with pytest.raises(BridgeError, match="not valid Unicode"):
        await a.send(a.address, "lone surrogate \ud800")


async def test_receiver_sends_no_ack_for_our_dms(local_node: LocalNode) -> None:
    # nkn-sdk alone never sets no_reply on the wire, so each DM came back as one ACK per
    # sub-client (spec nkn-protocol.md §2.4). The node's delivery count shows any such ACK.
    quiet = {"probe_interval_s": 600.0}
    async with (
        running(make_config(local_node, **quiet)) as a,
        running(make_config(local_node, **quiet)) as b,
    ):
        before = (await asyncio.to_thread(local_node.state))["delivered"]
        for i in range(5):
            await a.send(b.address, f"dm {i}")
        await receive(b, 5)
        await b.send(a.address, "marker")  # any ACK for the five was sent before this
        await receive(a, 1)
        delivered = (await asyncio.to_thread(local_node.state))["delivered"] - before
    subclients = make_config(local_node).num_subclients
    assert delivered == 6 * subclients  # one copy per sub-client of each DM, nothing more


async def test_a_stock_sdk_sender_still_gets_its_ack(pair: Pair, local_node: LocalNode) -> None:
    # Our own DMs carry no_reply; peers on the plain SDK wait for an ACK and must still get it.
    _, b = pair
    node = shutil.which("node")
    assert node is not None, "Node.js is required to run nkn-sdk"
    env = {**os.environ, "NODE_PATH": str(BRIDGE_DIR / "node_modules")}
    script = Path(__file__).with_name("stock_sender.js")
    proc = await asyncio.create_subprocess_exec(
        node, str(script), local_node.rpc_url, b.address, "from a stock sdk",
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
    [got] = await receive(b, 1)
    assert json.loads(stdout.decode().splitlines()[-1]) == {"acked": True}
    assert got.payload == "from a stock sdk"


async def test_a_dm_sent_with_ack_gets_the_receivers_ack(pair: Pair) -> None:
    a, b = pair
    ack = asyncio.get_running_loop().create_future()
    await a.send(b.address, "please ack", ack=ack)
    [got] = await receive(b, 1)
    assert await asyncio.wait_for(ack, 10) is True
    assert got.payload == "please ack"


async def test_a_stalled_link_is_held_back_in_the_outbox_bounded_by_bytes(
    local_node: LocalNode,
) -> None:
    # The receiver's bridge is frozen: the node blocks writing to it and stops reading from us.
    # `sent` must then stop too, so DMs stay in our bounded outbox instead of piling up in
    # the bridge's websocket buffer.
    quiet = {"probe_interval_s": 600.0}
    limit_b = 4_000_000
    async with (
        running(make_config(local_node, queue_limit_b=limit_b, **quiet)) as a,
        running(make_config(local_node, **quiet)) as b,
    ):
        assert b.bridge_pid is not None
        os.kill(b.bridge_pid, signal.SIGSTOP)
        try:
            offered = await _offer(a, b.address, count=80, size_b=1_000_000)
            # The link stalled once the socket buffers were full (about 20 MB on loopback): the
            # rest could not even be queued. A bridge that confirmed each write at once took
            # all 80 MB into its websocket buffer (its RSS grew by about 190 MB).
            assert offered < 60
            assert a.outbox_b <= limit_b
        finally:
            os.kill(b.bridge_pid, signal.SIGCONT)


async def _offer(a: NknTransport, dest: str, count: int, size_b: int) -> int:
    """Queue up to `count` DMs, waiting up to 2 s for room each; how many were queued."""
    payload = "y" * size_b
    for offered in range(count):
        try:
            async with asyncio.timeout(2.0):
                while True:
                    try:
                        await a.send(dest, payload)
                        break
                    except QueueFullError:
                        await asyncio.sleep(0.01)
        except TimeoutError:
            return offered
    return count
