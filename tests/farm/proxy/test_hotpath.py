"""The direct relay (head, first chunk and body written from the upstream connection's
callbacks): what a client sees is what the backend sent, byte for byte, in every framing;
aborts, deaths and slow clients behave as on the `send()` path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import psutil
import pytest

from farm.proxy.child import ProxyServer
from tests.farm.proxy.hotpath_backend import (
    BIG_LINE,
    NDJSON_CHUNKS,
    SSE_CHUNKS,
    HotpathBackend,
)

pytestmark = pytest.mark.anyio


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def backend() -> AsyncIterator[HotpathBackend]:
    server = await HotpathBackend().start()
    try:
        yield server
    finally:
        await server.stop()


async def _raw(port: int, request: bytes, until_close: bool = True) -> bytes:
    """Send `request` on a raw socket; everything read until the proxy closes (or the end of
    one response when `until_close` is False and the response is chunked)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if until_close:
            return await asyncio.wait_for(reader.read(-1), 10)
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            more = await asyncio.wait_for(reader.read(65536), 10)
            assert more, f"connection closed early after {data!r}"
            data += more
        return data
    finally:
        writer.close()


def _dechunk(body: bytes) -> bytes:
    """The payload of a chunked body; asserts the framing is well formed and ends once."""
    out, rest = b"", body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n", f"bytes after the last chunk: {rest!r}"
            return out
        assert rest[size : size + 2] == b"\r\n"
        out, rest = out + rest[:size], rest[size + 2 :]


@pytest.mark.parametrize(
    ("path", "chunks"),
    [("/api/ndjson", NDJSON_CHUNKS), ("/v1/sse", SSE_CHUNKS)],
    ids=["ndjson", "sse"],
)
async def test_stream_bytes_pass_through_exactly(backend, proxy_for, path, chunks):
    async with proxy_for([backend.url]) as proxy:
        for _ in range(2):  # the second goes down the pooled connection
            raw = await _raw(
                proxy.port,
                f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                until_close=False,
            )
            head, body = raw.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"transfer-encoding: chunked" in head.lower()
            assert b"x-accel-buffering: no" in head.lower()
            assert _dechunk(body) == b"".join(chunks)


async def test_official_client_reads_lines_as_sent(backend, proxy_for):
    async with proxy_for([backend.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/api/ndjson") as resp:
            lines = [line async for line in resp.content]
    assert b"".join(lines) == b"".join(NDJSON_CHUNKS)
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("HEAD", "/api/ndjson", 200, b""),
        ("GET", "/api/length", 200, b'{"status":"ok"}'),
        ("GET", "/api/nocontent", 204, b""),
        ("GET", "/api/notmodified", 304, b""),
        ("GET", "/api/close", 200, b"".join(NDJSON_CHUNKS)),
    ],
    ids=["head", "content-length", "204", "304", "close-delimited"],
)
async def test_other_framings_stay_correct(backend, proxy_for, method, path, status, body):
    async with proxy_for([backend.url]) as proxy, aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.request(method, proxy.url + path) as resp:
                assert resp.status == status
                assert await resp.read() == body
        # The connection is still good for a stream afterwards.
        async with http.get(proxy.url + "/api/ndjson") as resp:
            assert await resp.read() == b"".join(NDJSON_CHUNKS)


@pytest.mark.parametrize("path", ["/api/die", "/v1/die"], ids=["ndjson", "sse"])
async def test_backend_death_mid_stream_ends_with_in_band_error(backend, proxy_for, path):
    async with proxy_for([backend.url]) as proxy:
        raw = await _raw(
            proxy.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), until_close=False
        )
    body = _dechunk(raw.split(b"\r\n\r\n", 1)[1])
    first = SSE_CHUNKS[0] if path.startswith("/v1") else NDJSON_CHUNKS[0]
    assert body.startswith(first)
    tail = body[len(first) :]
    if path.startswith("/v1"):
        assert tail.startswith(b"event: error\ndata: {")
    else:
        assert tail.startswith(b'{"error":') and tail.endswith(b"\n")
    assert b"broke off" in tail


async def test_client_leaving_mid_stream_aborts_backend(backend, proxy_for):
    async with proxy_for([backend.url]) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /api/endless HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while got.count(b"\n{") < 3:  # a few lines have come through
            got += await asyncio.wait_for(reader.read(65536), 10)
        writer.transport.abort()
        await wait_until(lambda: backend.state.aborted == 1, timeout=3.0)
        await wait_until(lambda: proxy.app.pool.in_flight == 0)


async def test_slow_client_holds_the_backend_back_and_proxy_rss_flat(backend):
    """A client that stops reading: the backend stops writing (TCP back-pressure through the
    proxy), the proxy's RSS stays flat, and every byte arrives once the client reads."""
    backend.big_lines = 4000  # 260 MB offered
    server = ProxyServer([backend.url], access_log=False)
    await asyncio.to_thread(server.start)
    try:
        proc = psutil.Process(server.pid)
        base = proc.memory_info().rss
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        # Not reading: the backend must come to a stop, far short of what it offers.
        last, still_since = -1, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() - still_since < 1.0:
            assert time.monotonic() < deadline, "backend never stopped writing"
            if backend.state.sent != last:
                last, still_since = backend.state.sent, time.monotonic()
            await asyncio.sleep(0.05)
        assert backend.state.sent < 40 * 1024**2, f"backend wrote {backend.state.sent} bytes"
        growth_mb = (proc.memory_info().rss - base) / 1e6
        assert growth_mb < 20, f"proxy RSS grew by {growth_mb:.1f} MB"
        payload, rest = 0, b""
        while True:
            data = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert data, "stream ended without its last chunk"
            rest += data
            if rest.endswith(b"\r\n0\r\n\r\n"):
                break
            # Count payload bytes frame by frame, keeping an unfinished frame for later.
            while True:
                size_end = rest.find(b"\r\n")
                if size_end < 0:
                    break
                size = int(rest[:size_end], 16)
                if size == 0 or len(rest) < size_end + 2 + size + 2:
                    break
                payload += size
                rest = rest[size_end + 2 + size + 2 :]
        payload += len(_dechunk(rest))
        writer.close()
        assert payload == backend.big_lines * len(BIG_LINE)
    finally:
        await asyncio.to_thread(server.stop)
