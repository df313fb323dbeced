"""The fast path on the in-memory network: shared messages, exact streams under faults, fallback."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable

import pytest

from relay.client import RelayClient
from relay.errors import RemoteError
from relay.frames import decode, encode
from relay.memory import MemoryNetwork
from relay.muxframes import MuxMessage
from tests.relay.harness import Harness, config_for, running_relay
from tests.relay.upstream import Upstream

pytestmark = pytest.mark.anyio
STREAMS = 9


class Faults:
    """A seeded `deliver` hook: drop, duplicate or delay (reorder) a fraction of DMs."""

    def __init__(self, network: MemoryNetwork, seed: int, *, drop: float, dup: float, late: float):
        self._network = network
        self._rng = random.Random(seed)
        self._drop, self._dup, self._late = drop, dup, late
        self.dropped = self.duplicated = self.delayed = 0

    def __call__(self, src: str, dest: str, payload: str) -> Iterable[str]:
        roll = self._rng.random()
        if roll < self._drop:
            self.dropped += 1
            return []
        if roll < self._drop + self._dup:
            self.duplicated += 1
            return [payload, payload]
        if roll < self._drop + self._dup + self._late:
            self.delayed += 1
            later = self._rng.uniform(0.005, 0.05)
            loop = asyncio.get_running_loop()
            loop.call_later(later, self._network.inject, src, dest, [payload])
            return []
        return [payload]


async def _run_streams(h: Harness, n: int = 40, streams: int = STREAMS) -> list[list[int]]:
    async def one(i: int) -> list[int]:
        async with h.client.stream(path=f"/stream?n={n}&delay=0.002", json={"i": i}) as s:
            lines = await s.lines()
        assert s.result.fast and s.result.end is not None and s.result.end.done_seen
        assert json.loads(lines[-1].line)["done"] is True
        return [line.seq for line in lines]

    return list(await asyncio.gather(*(one(i) for i in range(streams))))


def _to_peer(h: Harness) -> list[str]:
    return [dm.payload for dm in h.network.sent_by(h.relay.address) if dm.dest == h.peer.address]


async def test_nine_fast_streams_share_messages_and_arrive_in_order() -> None:
    async with Upstream() as up, running_relay(config_for(up.url), fast=True) as h:
        seqs = await _run_streams(h, n=100)
    assert seqs == [list(range(1, 102))] * STREAMS
    to_peer = [p for p in _to_peer(h) if '"relay.info"' not in p]
    assert all(json.loads(p)["event"].startswith("relay.mux") for p in to_peer)
    shared = [decode(p) for p in to_peer]
    assert any(isinstance(m, MuxMessage) and len({i.id for i in m.items}) > 1 for m in shared)
    lines = STREAMS * 101
    # The seed's batching needs one DM per 24 lines per stream at best; one window shares.
    assert len(to_peer) * 100 / lines < 10
    assert h.client.stats.mux_dup_in == 0 and h.client.stats.requests_resent == 0


@pytest.mark.parametrize("seed", [1, 2, 3], ids=["seed1", "seed2", "seed3"])
async def test_fast_streams_are_exact_under_loss_duplication_and_reordering(seed: int) -> None:
    network = MemoryNetwork()
    faults = Faults(network, seed, drop=0.1, dup=0.05, late=0.1)
    network.deliver = faults
    config = config_for("http://unused", mux_rto_ms=200, mux_window_ms=20)
    async with Upstream() as up:
        config = config.model_copy(update={"targets": {"ollama": up.url}})
        async with running_relay(config, network=network, fast=True, resend_s=0.3) as h:
            seqs = await _run_streams(h, n=60)
    assert seqs == [list(range(1, 62))] * STREAMS
    assert faults.dropped and faults.duplicated and faults.delayed
    stats = h.client.stats
    assert stats.resend_asks + stats.requests_resent > 0  # something was repaired


async def test_a_refused_fast_request_is_answered_through_the_mux() -> None:
    async with Upstream() as up, running_relay(config_for(up.url), fast=True) as h:
        with pytest.raises(RemoteError, match="unknown service 'nope'"):
            async with h.client.stream(service="nope", path="/x") as s:
                await s.lines()
    assert any('"k":"end"' in p for p in _to_peer(h))


async def test_leaving_a_fast_stream_early_closes_the_upstream() -> None:
    async with Upstream() as up, running_relay(config_for(up.url), fast=True) as h:
        async with h.client.stream(path="/hang") as s:
            async for _ in s:
                break
        await up.wait_for(lambda u: u.disconnects == 1 and u.active == 0)
        assert h.server.in_flight == 0 or await _drained(h)


async def test_a_relay_without_the_fast_path_gets_the_seed_api() -> None:
    config = config_for("http://unused", fast_path=False)
    async with Upstream() as up:
        config = config.model_copy(update={"targets": {"ollama": up.url}})
        async with running_relay(config, fast=None) as h:
            async with h.client.stream(path="/stream?n=5") as s:
                lines = await s.lines()
            assert h.client.fast_path is False and not s.result.fast and len(lines) == 6
        async with running_relay(config, fast=True) as h:
            with pytest.raises(RemoteError, match="does not offer the fast path"):
                async with h.client.stream(path="/stream?n=5") as s:
                    await s.lines()


async def test_a_seed_peer_of_a_fast_relay_sees_only_seed_frames() -> None:
    async with Upstream() as up, running_relay(config_for(up.url), fast=False) as h:
        async with h.client.stream(path="/stream?n=30") as s:
            await s.lines()
        info = await h.client.info()
    assert info.offers == ("mux/1",)
    events = [json.loads(p)["event"] for p in _to_peer(h)]
    assert set(events) <= {
        "relay.response.begin",
        "relay.response.lines",
        "relay.response.end",
        "relay.info",
    }
    # Each seed frame is exactly what the seed's encoder writes for it.
    assert all(encode(decode(p)) == p for p in _to_peer(h) if '"relay.info"' not in p)


async def test_a_resent_fast_request_runs_once() -> None:
    async with Upstream() as up, running_relay(config_for(up.url), fast=True) as h:
        async with h.client.stream(path="/stream?n=20&delay=0.01") as s:
            await h.client._send(s.request)  # the peer's resend, as after a lost DM
            lines = await s.lines()
    assert len(lines) == 21 and len(up.requests) == 1


async def _drained(h: Harness) -> bool:
    async with asyncio.timeout(5):
        while h.server.in_flight:
            await asyncio.sleep(0.01)
    return True


def _drop_acks(src: str, dest: str, payload: str) -> Iterable[str]:
    """A peer whose acks never reach the relay (it stopped reading, or its uplink died)."""
    return [] if '"relay.mux.ack"' in payload else [payload]


async def test_a_peer_that_never_acks_stops_the_upstream_then_counts_as_gone() -> None:
    network = MemoryNetwork(deliver=_drop_acks)
    window_b = 64 * 1024
    config = config_for("http://unused", mux_window_b=window_b, ack_timeout_s=1.5, mux_rto_ms=200)
    async with Upstream() as up:
        config = config.model_copy(update={"targets": {"ollama": up.url}})
        async with running_relay(config, network=network, fast=True) as h:
            async with h.client.stream(path="/flood?mb=50") as s:
                with pytest.raises(RemoteError, match="peer unreachable"):
                    await s.lines()
            # The window held the upstream: of 50 MB, little more than TCP's buffers was written.
            assert up.flood_b < 10_000_000
            await up.wait_for(lambda u: u.disconnects == 1 and u.active == 0)
    sent = [decode(p) for p in _to_peer(h) if '"relay.mux"' in p]
    first_sends = {m.n: m for m in sent if isinstance(m, MuxMessage)}
    # Never more than the window unacknowledged: nothing the peer could not ask again.
    assert sum(len(encode(m)) for m in first_sends.values()) < window_b + 300_000


async def test_a_streams_first_line_does_not_wait_for_the_window() -> None:
    # A 30 s window: only the first line's own flush can bring it within the deadline.
    config = config_for("http://unused", mux_window_ms=30_000)
    async with Upstream() as up:
        config = config.model_copy(update={"targets": {"ollama": up.url}})
        async with running_relay(config, fast=True) as h:
            async with h.client.stream(path="/hang") as s:
                async with asyncio.timeout(10):
                    first = await anext(aiter(s))
    assert first.seq == 1


async def test_a_new_client_of_a_peer_whose_last_one_left_unacknowledged_gets_its_streams() -> None:
    # The first client's last acks are lost, so the relay keeps (and resends) its last
    # message; a second client on the same address, past the ack timeout, must still be served.
    network = MemoryNetwork()
    lose_acks = cut_off = False

    def deliver(src: str, dest: str, payload: str) -> Iterable[str]:
        lost = cut_off or (lose_acks and '"relay.mux.ack"' in payload)
        return [] if lost else [payload]

    network.deliver = deliver
    config = config_for("http://unused", ack_timeout_s=0.5, mux_rto_ms=200)
    async with Upstream() as up:
        config = config.model_copy(update={"targets": {"ollama": up.url}})
        async with running_relay(config, network=network, fast=True) as h:
            lose_acks = True
            assert await _run_streams(h, n=5, streams=1) == [list(range(1, 7))]
            await h.client.aclose()
            # Past the ack timeout (0.8 s with four RTOs), before the resends' backoff checks;
            # the resends meanwhile are lost too.
            cut_off = True
            await asyncio.sleep(1.0)
            lose_acks = cut_off = False
            async with RelayClient(h.peer, h.relay.address, fast=True) as again:
                h.client = again
                seqs = await _run_streams(h, n=5, streams=3)
    assert seqs == [list(range(1, 7))] * 3
