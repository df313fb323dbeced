"""The local node's limits, on a real node process through real sockets: an oversized header
line or RPC body is refused before the node holds it, slow or idle connections are closed, a
connection over the cap is answered 503, and afterwards the node still serves the SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import psutil
import pytest

from farm.common.childserver import poll_until
from relay.localnode.child import LocalNode
from relay.localnode.settings import LocalNodeSettings
from tests.relay.localnode.sdk import run_sdk_clients

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
SHORT_S = 0.5  # the timeouts of the node under test
CLOSE_WITHIN_S = 5.0  # how long a test waits for the node to close a connection
LIMITS = LocalNodeSettings(
    client_header_timeout=SHORT_S,
    client_body_timeout=SHORT_S,
    keepalive_timeout=SHORT_S,
    client_max_body_size=64 * 1024,
)


@pytest.fixture(scope="module")
def node() -> Iterator[LocalNode]:
    with LocalNode(settings=LIMITS) as running:
        yield running


@asynccontextmanager
async def connection(node: LocalNode) -> AsyncIterator[tuple[asyncio.StreamReader, Offer]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    try:
        yield reader, Offer(writer)
    finally:
        writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


class Offer:
    """Writes to the node until it stops reading or closes; `.sent` counts what went."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.sent = 0

    async def send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
            self.sent += len(data)
        except ConnectionError:
            pass

    async def flood(self, head: bytes, filler: bytes, total: int) -> None:
        await self.send(head)
        while self.sent < total and not self.writer.is_closing():
            await self.send(filler)


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of the node's next answer."""
    async with asyncio.timeout(CLOSE_WITHIN_S):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


async def closed(reader: asyncio.StreamReader) -> bytes:
    """What the node still sends before it closes the connection (a reset counts as closed)."""
    async with asyncio.timeout(CLOSE_WITHIN_S):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


def assert_serves(node: LocalNode) -> None:
    call = {"id": "t", "jsonrpc": "2.0", "method": "getwsaddr", "params": {}}
    assert "addr" in httpx.post(node.url, json=call, timeout=5).json()["result"]


async def test_a_50_mb_header_line_is_refused_and_never_held(node: LocalNode) -> None:
    proc = psutil.Process(node.pid)
    before = proc.memory_info().rss
    async with connection(node) as (reader, offer):
        head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: "
        flooding = asyncio.create_task(offer.flood(head, b"a" * 65536, 50 * MiB))
        status, _ = await answer(reader)
        async with asyncio.timeout(CLOSE_WITHIN_S):
            await flooding  # the node drops what it is still offered, then closes
        assert await closed(reader) == b""
    assert status == 431
    assert proc.memory_info().rss - before < 20 * MiB
    assert_serves(node)


async def test_a_head_over_max_header_bytes_in_short_lines_is_431(node: LocalNode) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 1000) for n in range(40))  # 40 KiB
    async with connection(node) as (reader, offer):
        await offer.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
        status, body = await answer(reader)
        assert await closed(reader) == b""
    assert status == 431
    assert "--max-header-bytes" in json.loads(body)["error"]
    assert_serves(node)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_rpc_body_is_413_and_the_node_still_serves(
    node: LocalNode, declared: bool
) -> None:
    length = (
        b"Content-Length: %d\r\n" % (8 * MiB) if declared else b"Transfer-Encoding: chunked\r\n"
    )
    head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    chunk = b"x" * 65536
    filler = chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk)
    async with connection(node) as (reader, offer):
        flooding = asyncio.create_task(offer.flood(head + length + b"\r\n", filler, 8 * MiB))
        status, body = await answer(reader)
        flooding.cancel()
    assert status == 413
    assert json.loads(body)["error"]["code"] == -32600
    assert_serves(node)


@pytest.mark.parametrize(
    ("partial", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 408),
        (b"", 408),
        (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{", 408),
    ],
    ids=["head", "nothing", "body"],
)
async def test_a_stalled_connection_is_answered_408_and_closed(
    node: LocalNode, partial: bytes, status: int
) -> None:
    async with connection(node) as (reader, offer):
        await offer.send(partial)
        assert (await answer(reader))[0] == status
        assert await closed(reader) == b""


async def test_an_idle_kept_alive_connection_is_closed(node: LocalNode) -> None:
    async with connection(node) as (reader, offer):
        await offer.send(b"GET /_localnode/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, body = await answer(reader)
        assert await closed(reader) == b""  # at keepalive_timeout
    assert status == 200
    assert b"local_test_network" in body


def test_a_connection_over_the_cap_is_answered_503_and_served_once_one_leaves() -> None:
    with LocalNode(settings=LocalNodeSettings(max_connections=2)) as capped:
        held = [socket.create_connection(("127.0.0.1", capped.port)) for _ in range(2)]
        try:
            refused = httpx.get(f"{capped.url}/_localnode/state", timeout=5)
            assert refused.status_code == 503
        finally:
            held.pop().close()
        try:

            def served() -> bool:
                return httpx.get(f"{capped.url}/_localnode/state", timeout=5).status_code == 200

            poll_until(served, CLOSE_WITHIN_S, "a place freed for a new client")
        finally:
            held.pop().close()


def test_after_the_attacks_above_the_sdk_still_connects_sends_and_acks(node: LocalNode) -> None:
    # The node's timeouts here are 0.5 s: its websockets outlive its keep-alive timeout.
    observed = run_sdk_clients(node.rpc_url)
    assert len(observed["connectMs"]) == 4
    assert observed["reply"] == "answer"
    assert observed["ack"] is None
