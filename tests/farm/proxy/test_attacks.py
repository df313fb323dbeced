"""Attacks on a running proxy process, through real sockets, as a client would see them:
header floods, slowloris, a connection flood at `ulimit -n 1024`, and path traversal.

The proxy (`ProxyServer`) runs as a subprocess; the fake backend runs in the test's loop and
records every request that reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp
import psutil
import pytest

from farm.proxy.child import ProxyServer
from tests.farm.common.rawhttp import exchange, get, read_response
from tests.farm.proxy.fake_backend import FakeBackend

pytestmark = pytest.mark.anyio

MB = 2**20
HEADER_TIMEOUT_S = 2.0


@contextlib.asynccontextmanager
async def proxy_in_front_of(fake: FakeBackend, **settings):
    server = ProxyServer([fake.url], access_log=False, **settings)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def _stream_lines(server: ProxyServer) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/generate", json={"model": "m"}) as resp:
            assert resp.status == 200
            return [json.loads(line) async for line in resp.content]


def _forwarded(fake: FakeBackend) -> list[tuple[str, str]]:
    """Requests that reached the backend, less the proxy's own health probes."""
    probes = {"/api/version", "/api/ps", "/api/tags", "/_sim/state"}
    return [(m, p) for m, p in fake.state.requests if not (m == "GET" and p in probes)]


async def test_a_200_mb_header_line_is_refused_with_flat_memory_then_streams_work(fake):
    async with proxy_in_front_of(fake) as server:
        proc = psutil.Process(server.pid)
        await _stream_lines(server)  # warm the code paths
        base = peak = proc.memory_info().rss
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /api/version HTTP/1.1\r\nHost: p\r\nX-Flood: ")
        answer = asyncio.ensure_future(read_response(reader))
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < 200 * MB:
                writer.write(b"a" * MB)
                await writer.drain()
                sent += MB
                peak = max(peak, proc.memory_info().rss)
        resp = await asyncio.wait_for(answer, 10)
        writer.close()
        peak = max(peak, proc.memory_info().rss)
        lines = await _stream_lines(server)
    assert resp.status == 431
    assert resp.headers["connection"] == "close"
    assert "error" in resp.json()
    growth_mb = (peak - base) / 1e6
    assert growth_mb < 20, f"proxy RSS grew by {growth_mb:.1f} MB"
    assert lines[-1]["done"] is True
    assert ("GET", "/api/version") not in _forwarded(fake)


async def test_20000_headers_are_refused_and_never_reach_the_backend(fake):
    flood = b"".join(b"X-H-%d: v\r\n" % i for i in range(20_000))
    async with proxy_in_front_of(fake) as server:
        resp = await exchange(server.port, get("/api/echo", flood))
        lines = await _stream_lines(server)
    assert resp.status == 431
    assert "error" in resp.json()
    assert ("GET", "/api/echo") not in _forwarded(fake)
    assert lines[-1]["done"] is True


async def _slowloris(port: int, loop: asyncio.AbstractEventLoop) -> float:
    """Send a header byte every 0.5 s until the proxy closes; seconds the connection lived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = loop.time()
    head = iter(b"GET /api/version HTTP/1.1\r\nHost: p\r\nX-Slow: " + b"s" * 100)
    try:
        closed = asyncio.ensure_future(reader.read())
        while not closed.done():
            writer.write(bytes([next(head)]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), 0.5)
        return loop.time() - opened
    except ConnectionError:
        return loop.time() - opened
    finally:
        writer.close()


async def test_200_slowloris_connections_are_closed_in_time_while_a_client_is_served(fake):
    loop = asyncio.get_running_loop()
    async with proxy_in_front_of(fake, client_header_timeout=HEADER_TIMEOUT_S) as server:
        attack = asyncio.gather(*(_slowloris(server.port, loop) for _ in range(200)))
        served = 0
        async with aiohttp.ClientSession() as http:
            while not attack.done():
                async with http.get(server.url + "/api/version") as resp:
                    assert resp.status == 200
                    served += 1
                await asyncio.sleep(0.05)  # pace the normal client, not a wait for an event
        lived = await attack
    assert max(lived) < HEADER_TIMEOUT_S + 5
    assert served >= 10


async def test_1000_idle_keepalive_connections_at_ulimit_1024_leave_the_proxy_answering(fake):
    fake.lines, fake.line_delay_s = 40, 0.05  # a 2 s stream, running across the flood
    async with proxy_in_front_of(fake, max_open_files=1024) as server:
        stream = asyncio.ensure_future(_stream_lines(server))
        held = []
        statuses: list[int] = []

        async def keep_alive_one() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            held.append(writer)
            writer.write(get("/api/version"))
            statuses.append((await read_response(reader)).status)

        try:
            for _ in range(20):  # in batches, so that the connections pile up idle
                await asyncio.gather(*(keep_alive_one() for _ in range(50)))
            fresh = await exchange(server.port, get("/api/version"))
            lines = await stream
            alive = server.exited() is None
        finally:
            for writer in held:
                writer.close()
    assert set(statuses) <= {200, 503} and len(statuses) == 1000
    assert fresh.status in (200, 503)
    assert alive
    assert len(lines) == 41 and lines[-1]["done"] is True


TRAVERSALS = [
    b"/api/../api/tags",
    b"/api/./tags",
    b"/api/..",
    b"/v1/../api/tags",
    b"/api/%2e%2e/tags",
    b"/api/%2E%2e/tags",
    b"/api/.%2e/tags",
    b"/%2e%2e/api/tags",
    b"/api%2f..%2ftags",
    b"/api/..%2Ftags",
    b"/api/%2F",
    b"/api\\..\\tags",
    b"/api/%5c..%5ctags",
    b"/api/tags%00",
    b"/api/%c0%ae%c0%ae/tags",
    b"/api/%ff",
    b"/api/\xff",
]


async def test_every_traversal_spelling_gets_400_and_never_reaches_the_backend(fake):
    async with proxy_in_front_of(fake) as server:
        answers = [
            await exchange(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: p\r\n\r\n")
            for path in TRAVERSALS
        ]
        normal = await exchange(server.port, get("/api//echo"))
    refused = {
        path: (a.status, a.json().get("error")) for path, a in zip(TRAVERSALS, answers, strict=True)
    }
    assert all(status == 400 and error for status, error in refused.values()), refused
    assert normal.status == 200 and normal.json()["path"] == "/api/echo"
    assert _forwarded(fake) == [("GET", "/api/echo")]
