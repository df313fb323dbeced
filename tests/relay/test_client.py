"""The peer client: ordering, duplicates, gaps, keepalives, timeouts and early cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

import pytest

from relay.client import RelayClient
from relay.errors import ClientTimeout, RemoteError, StreamGapError
from relay.memory import MemoryNetwork
from tests.relay.harness import config_for, running_relay
from tests.relay.upstream import Upstream

pytestmark = pytest.mark.anyio


def _is(payload: str, event: str) -> bool:
    return json.loads(payload).get("event") == event


async def test_lines_held_back_until_after_the_end_are_still_yielded_in_order() -> None:
    network = MemoryNetwork()
    held: list[str] = []

    def deliver(src: str, dest: str, payload: str) -> Iterable[str]:
        if _is(payload, "relay.response.lines") and not held and src.startswith("relay."):
            held.append(payload)  # the first batch overtaken by everything after it
            return []
        if _is(payload, "relay.response.end"):
            return [payload, *held]
        return [payload]

    network.deliver = deliver
    async with Upstream() as up, running_relay(config_for(up.url), network=network) as h:
        async with h.client.stream(path="/stream?n=60", json={}) as s:
            lines = await s.lines()
    assert [line.seq for line in lines] == list(range(1, 62))
    assert [f.kind for f in s.result.frames][-2:] == ["end", "lines"]


async def test_duplicate_frames_are_dropped_and_counted() -> None:
    network = MemoryNetwork()
    network.deliver = lambda s, d, p: [p, p] if _is(p, "relay.response.lines") else [p]
    async with Upstream() as up, running_relay(config_for(up.url), network=network) as h:
        async with h.client.stream(path="/stream?n=30", json={}) as s:
            lines = await s.lines()
    assert [line.seq for line in lines] == list(range(1, 32))
    assert s.result.duplicates == 31


async def test_a_lost_frame_is_reported_as_a_gap_not_success() -> None:
    network = MemoryNetwork()
    seen: list[str] = []

    def deliver(src: str, dest: str, payload: str) -> Iterable[str]:
        if _is(payload, "relay.response.lines"):
            seen.append(payload)
            if len(seen) == 2:
                return []
        return [payload]

    network.deliver = deliver
    async with Upstream() as up:
        config = config_for(up.url, batch_lines=10)
        async with running_relay(config, network=network, end_grace_s=0.2) as h:
            with pytest.raises(StreamGapError) as caught:
                async with h.client.stream(path="/stream?n=29", json={}) as s:
                    await s.lines()
    # Batches: [1] (line 1 goes alone), [2..11] (lost), [12..21], [22..30].
    assert caught.value.missing == tuple(range(2, 12)) and caught.value.last_seq == 30
    assert s.result.lines == 1


async def test_stopping_early_sends_relay_cancel() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        async with h.client.stream(path="/hang", json={}) as s:
            async for _ in s:
                break
        await up.wait_for(lambda u: u.disconnects == 1)
        sent = h.network.sent_by(h.peer.address)
        cancels = [dm for dm in sent if _is(dm.payload, "relay.cancel")]
    assert [json.loads(c.payload)["id"] for c in cancels] == [s.request.id]


async def test_keepalives_keep_a_slow_stream_alive() -> None:
    async with Upstream() as up:
        config = config_for(up.url, keepalive_s=0.05)
        async with running_relay(config, idle_timeout_s=0.25) as h:
            async with h.client.stream(path="/stream?n=3&delay=0.4", json={}) as s:
                lines = await s.lines()
    assert len(lines) == 4
    assert any(f.kind == "keepalive" for f in s.result.frames)


async def test_silence_past_the_idle_timeout_raises_and_cancels() -> None:
    async with Upstream() as up:
        async with running_relay(config_for(up.url), idle_timeout_s=0.2) as h:
            with pytest.raises(ClientTimeout):
                async with h.client.stream(path="/stream?n=2&delay=30", json={}) as s:
                    await s.lines()
            await up.wait_for(lambda u: u.disconnects == 1)
    assert s.result.lines == 1


async def test_total_timeout_raises_client_timeout() -> None:
    async with Upstream() as up, running_relay(config_for(up.url, keepalive_s=0.05)) as h:
        with pytest.raises(ClientTimeout):
            async with h.client.stream(path="/hang", json={}, timeout_s=0.3) as s:
                await s.lines()
    assert s.result.lines > 0


async def test_no_relay_at_the_address_times_out() -> None:
    network = MemoryNetwork()
    peer = network.transport("peer")
    await peer.start()
    async with RelayClient(peer, "nobody." + "00" * 32, timeout_s=0.2) as client:
        with pytest.raises(ClientTimeout):
            await client.ping(timeout_s=0.2)
        with pytest.raises(ClientTimeout):
            await client.request(path="/x")


async def test_upstream_http_errors_are_returned_not_raised() -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "model 'x' not found"})

    async with running_relay(config_for("http://upstream"), handler=handler) as h:
        response = await h.client.request(path="/api/show", json={"model": "x"})
        lines = []
        with pytest.raises(RemoteError, match="HTTP 404"):
            async with h.client.stream(path="/api/generate", json={"model": "x"}) as s:
                async for line in s:
                    lines.append(line)
    assert response.status == 404 and not response.ok and response.error is None
    assert json.loads(lines[0].line) == {"error": "model 'x' not found"}


async def test_a_seed_relay_answering_without_ids_still_serves_ping_and_info() -> None:
    network = MemoryNetwork()
    relay, peer = network.transport("seed-relay"), network.transport("peer")
    await relay.start()
    await peer.start()

    async def seed_relay() -> None:
        async for message in relay.incoming():
            event = json.loads(message.payload)["event"]
            reply = (
                {"event": "relay.pong", "ts": 1, "addr": relay.address}
                if event == "relay.ping"
                else {"event": "relay.info", "services": ["ollama"], "verify_default": True,
                      "workers": 4, "max_body_b": 2097152}
            )  # fmt: skip
            await relay.send(message.src, json.dumps(reply))

    task = asyncio.create_task(seed_relay())
    try:
        async with RelayClient(peer, relay.address) as client:
            pong, _ = await client.ping(timeout_s=5)
            info = await client.info(timeout_s=5)
    finally:
        task.cancel()
    assert pong.addr == relay.address and pong.id is None
    assert info.services == ("ollama",) and info.workers == 4
