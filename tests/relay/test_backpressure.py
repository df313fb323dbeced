"""A stalled or vanished peer, end to end on the memory network: bounded memory, freed slots.

The relay's outgoing link is stalled with `MemoryNetwork.hold` (what a saturated NKN link looks
like to the relay: DMs accepted, never confirmed). The upstream offers 50 MB; the relay must
hold no more than its caps, and the upstream must end up blocked writing into TCP: its write
waits for longer than any reader that keeps reading would ever make it wait.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest

from farm.sim.child import SimServer
from relay.client import RelayClient
from tests.relay.harness import config_for, running_relay
from tests.relay.upstream import Upstream

pytestmark = pytest.mark.anyio
MODEL = "gemma3:4b"
PEER_CAP_B = 256 * 1024
FLOOD_MB = 50
#: An upstream write that waited this long has a reader that stopped reading.
BLOCKED_S = 0.5


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition with a deadline (never a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def _stalled_config(url: str, **changes: object):
    # Small DMs and caps keep the test light; a long ACK timeout keeps the stalled peer "alive".
    settings: dict[str, object] = {
        "max_dm_b": 32 * 1024,
        "peer_unsent_b": PEER_CAP_B,
        "unsent_b": 4 * PEER_CAP_B,
        "ack_timeout_s": 60.0,
    }
    return config_for(url, **{**settings, **changes})


def _request(rid: str, path: str) -> str:
    req = {"service": "ollama", "path": path, "method": "GET", "stream": "chunks"}
    return json.dumps({"event": "relay.http", "id": rid, "req": req})


async def test_stalled_peer_stops_the_upstream_read_with_its_backlog_under_the_cap() -> None:
    async with Upstream() as up, running_relay(_stalled_config(up.url), with_client=False) as h:
        h.network.hold(h.relay.address)
        await h.send_raw(_request("f1", f"/flood?mb={FLOOD_MB}"))
        await until(lambda: up.stuck_s() > BLOCKED_S)
        held_b = h.network.held_b(h.relay.address)
        # Nothing was confirmed, so what the link holds now is the most it ever held.
        assert 0 < held_b <= PEER_CAP_B
        assert h.server.unsent_b(h.peer.address) == held_b == h.server.unsent_b()
        # The rest of the 50 MB stays upstream: what left it is the cap plus socket buffers.
        assert up.flood_b < FLOOD_MB * 1_000_000 // 2
        # A peer that reads nothing gets no more replies either (they would pile up).
        before = h.server.dms_received
        await h.send_raw('{"event":"relay.ping","id":"p1"}')
        await until(lambda: h.server.dms_received == before + 1)
        assert h.network.held_b(h.relay.address) <= PEER_CAP_B

        # The link catches up: reading resumes where it stopped.
        stopped_at = up.flood_b
        h.network.release(h.relay.address)
        await until(lambda: up.flood_b > stopped_at + 4 * PEER_CAP_B)
        await h.send_raw('{"event":"relay.cancel","id":"f1"}')
        await up.wait_for(lambda u: u.active == 0)


async def test_all_stalled_peers_together_stay_under_the_total_cap() -> None:
    async with Upstream() as up:
        config = _stalled_config(up.url, unsent_b=PEER_CAP_B * 3 // 2)
        async with running_relay(config, with_client=False) as h:
            other = h.network.transport("other")
            await other.start()
            h.network.hold(h.relay.address)
            await h.send_raw(_request("a", "/flood?mb=20"))
            await other.send(h.relay.address, _request("b", "/flood?mb=20"))
            await until(lambda: up.active == 2 and up.stuck_s() > BLOCKED_S)
            await until(lambda: h.server.unsent_b() > PEER_CAP_B)
            total = h.server.unsent_b()
            mine, theirs = h.server.unsent_b(h.peer.address), h.server.unsent_b(other.address)
            assert total == h.network.held_b(h.relay.address) <= PEER_CAP_B * 3 // 2
            assert mine <= PEER_CAP_B and theirs <= PEER_CAP_B and mine + theirs == total
            await other.close()


async def test_slow_peer_that_catches_up_gets_the_whole_answer_in_order() -> None:
    async with Upstream() as up, running_relay(_stalled_config(up.url)) as h:
        h.network.hold(h.relay.address)
        async with h.client.stream(path="/flood?mb=2", json={}) as s:
            # The loopback sockets can absorb all 2 MB: wait for the relay's side to fill.
            await until(lambda: h.network.held_b(h.relay.address) > PEER_CAP_B // 2)
            h.network.release(h.relay.address)
            lines = await s.lines()
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    assert sum(len(line.line) + 1 for line in lines[:-1]) == up.flood_b >= 2_000_000
    assert json.loads(lines[-1].line)["done"] is True
    end = s.result.end
    assert end is not None and end.ok and end.done_seen and end.last_seq == len(lines)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    # Answers never end by themselves: only a closed upstream frees the slot.
    with SimServer(
        num_parallel=1, load_ms=0, decode_ms=2, seed=5, response_tokens="1000000"
    ) as server:
        yield server


async def test_vanished_peer_frees_the_simulator_slot_within_the_ack_timeout(
    sim: SimServer,
) -> None:
    before = sim.state()["requests"]["cancelled"]
    body = {"model": MODEL, "prompt": "go on", "options": {"num_predict": 1_000_000}}
    req = {"service": "ollama", "path": "/api/generate", "method": "POST", "json": body,
           "stream": "chunks"}  # fmt: skip
    config = config_for(sim.url, ack_timeout_s=1.0)
    async with running_relay(config, with_client=False) as h:
        await h.send_raw(json.dumps({"event": "relay.http", "id": "v1", "req": req}))
        assert (await h.next_raw())["event"] == "relay.response.begin"
        await h.peer.close()  # gone without a relay.cancel: only missing ACKs can tell
        state = await asyncio.to_thread(
            sim.wait_for,
            lambda st: (
                st["models"][MODEL]["active"] == 0 and st["requests"]["cancelled"] == before + 1
            ),
            10.0,
        )
        await until(lambda: h.server.in_flight == 0)
        end = [f for f in h.frames_to_peer() if f["event"] == "relay.response.end"]
    assert state["models"][MODEL]["waiting"] == 0
    assert [e["error"] for e in end] == ["peer unreachable: no ACK within 1 s"]


async def test_a_peer_that_keeps_acknowledging_is_never_cut(sim: SimServer) -> None:
    # Stock peers ACK on their own (nkn-sdk): the ACK requests must cost them nothing else.
    body = {"model": MODEL, "prompt": "hi", "options": {"num_predict": 300}}  # cut by num_predict
    config = config_for(sim.url, ack_timeout_s=0.2)
    async with running_relay(config) as h:
        client: RelayClient = h.client
        async with client.stream(path="/api/generate", json=body) as s:
            lines = await s.lines()
    assert json.loads(lines[-1].line)["done"] is True
    assert s.result.end is not None and s.result.end.ok
