"""A streaming session's batching adapts to the transport: backlog makes frames larger.

The relay's outgoing link is stalled with `MemoryNetwork.hold`, as a saturated NKN bridge
would be; the upstream is a body the test feeds chunk by chunk, so nothing here depends on
timing. `batch_ms=0` makes every line due at once, which isolates the backpressure rule.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from relay.client import StreamLine
from relay.memory import MemoryNetwork
from tests.relay.harness import Harness, config_for, running_relay

pytestmark = pytest.mark.anyio


class Feed(httpx.AsyncByteStream):
    """An upstream body that yields exactly what the test puts in, when it does."""

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk


def ndjson(first: int, last: int) -> bytes:
    return b"".join(b'{"response":"t%d"}\n' % i for i in range(first, last + 1))


def lines_per_frame(h: Harness) -> list[int]:
    return [len(f["lines"]) for f in h.frames_to_peer() if f["event"] == "relay.response.lines"]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition with a deadline (never a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def _stream_with_feed(
    network: MemoryNetwork, steps: Callable[[Harness, Feed], Awaitable[None]]
) -> tuple[list[StreamLine], list[int]]:
    feed = Feed()

    def upstream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/x-ndjson"}, stream=feed)

    config = config_for("http://upstream.test", batch_lines=24, batch_ms=0)
    async with running_relay(config, handler=upstream, network=network) as h:

        async def read() -> list[StreamLine]:
            async with h.client.stream(path="/api/generate", json={"model": "m"}) as s:
                return await s.lines()

        reader = asyncio.create_task(read())
        await steps(h, feed)
        got = await asyncio.wait_for(reader, 5)
        return got, lines_per_frame(h)


async def test_lines_coalesce_while_the_last_frame_waits_in_the_transport() -> None:
    network = MemoryNetwork()

    async def steps(h: Harness, feed: Feed) -> None:
        network.hold(h.relay.address)
        feed.chunks.put_nowait(ndjson(1, 1))
        await until(lambda: lines_per_frame(h) == [1])  # the first line never waits
        feed.chunks.put_nowait(ndjson(2, 30))
        await until(lambda: lines_per_frame(h) == [1, 24])  # full batch: sent even so
        network.release(h.relay.address)  # the link caught up: the held 5 go as one frame
        await until(lambda: lines_per_frame(h) == [1, 24, 5])
        feed.chunks.put_nowait(b'{"done":true}\n')
        feed.chunks.put_nowait(None)

    lines, frames = await _stream_with_feed(network, steps)
    assert [line.seq for line in lines] == list(range(1, 32))
    assert json.loads(lines[-1].line) == {"done": True}
    assert frames == [1, 24, 5, 1]


async def test_a_link_that_keeps_up_gets_each_due_line_at_once() -> None:
    async def steps(h: Harness, feed: Feed) -> None:
        feed.chunks.put_nowait(ndjson(1, 1))
        await until(lambda: lines_per_frame(h) == [1])
        feed.chunks.put_nowait(ndjson(2, 30) + b'{"done":true}\n')
        feed.chunks.put_nowait(None)

    lines, frames = await _stream_with_feed(MemoryNetwork(), steps)
    assert [line.seq for line in lines] == list(range(1, 32))
    assert frames == [1] * 31
