"""The front door's protocol, through real loopback sockets to a server in the test's loop:
header limits answered before the head is held, header and body timeouts, the connection cap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from farm.common.frontdoor import DoorSettings, door_config
from farm.common.net import free_port
from tests.farm.common.rawhttp import exchange, get, read_response, until_closed

pytestmark = pytest.mark.anyio

FAST = {"client_header_timeout": 0.5, "client_body_timeout": 0.5, "keepalive_timeout": 5.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Seen:
    """What the app was asked and what it saw."""

    paths: list[str] = field(default_factory=list)
    disconnects: int = 0


class EchoApp:
    """`/stream` sends 3 chunks, `/wait` holds its response until released; anything else
    answers with the body length it read."""

    def __init__(self) -> None:
        self.seen = Seen()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.seen.paths.append(scope["path"])
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.seen.disconnects += 1
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["path"] == "/wait":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/stream":
            for i in range(3):
                await send({"type": "http.response.body", "body": b"%d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"read %d" % size})


@dataclass
class Running:
    port: int
    app: EchoApp


@contextlib.asynccontextmanager
async def door(**settings: Any) -> AsyncIterator[Running]:
    """Serve an `EchoApp` behind the door with `settings` until the block ends."""
    app, port = EchoApp(), free_port()
    config = door_config(
        app, DoorSettings(**{**FAST, **settings}), host="127.0.0.1", port=port, loop="none"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield Running(port, app)
    finally:
        app.release.set()
        server.should_exit = True
        await task


async def test_requests_within_the_limits_are_served_and_kept_alive() -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(get("/a") + b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        first, second = await read_response(reader), await read_response(reader)
        writer.write(get("/c", b"X-Big: " + b"v" * 8000 + b"\r\n"))
        third = await read_response(reader)
        writer.close()
    assert [first.status, second.status, third.status] == [200, 200, 200]
    assert second.body == b"read 5"
    assert srv.app.seen.paths == ["/a", "/b", "/c"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "says"),
    [
        (get("/" + "a" * 9000), 414, "--max-request-line"),
        (get("/", b"X-Long: " + b"v" * 9000 + b"\r\n"), 431, "--max-request-line"),
        (get("/", b"".join(b"X-%d: v\r\n" % i for i in range(101))), 431, "--max-headers"),
        (get("/", b"".join(b"X-%d: %s\r\n" % (i, b"v" * 4000) for i in range(9))), 431, "bytes"),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "invalid request"),
    ],
    ids=["request-line", "header-line", "header-count", "header-total", "garbage"],
)
async def test_a_head_over_a_limit_is_answered_and_closed(request_bytes, status, says) -> None:
    async with door() as srv:
        resp = await exchange(srv.port, request_bytes)
    assert resp.status == status
    assert resp.headers["connection"] == "close"
    assert says in resp.json()["error"]
    assert srv.app.seen.paths == []


@pytest.mark.parametrize("newline", [False, True], ids=["in-request-line", "in-a-header"])
async def test_an_endless_line_is_refused_while_the_client_is_still_sending(newline) -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /" if not newline else b"GET / HTTP/1.1\r\nX-Endless: ")
        answer = asyncio.ensure_future(read_response(reader))
        sent = 0
        with contextlib.suppress(ConnectionError):
            while not answer.done() and sent < 64 * 2**20:
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
        resp = await asyncio.wait_for(answer, 10)
        writer.close()
    assert resp.status == (431 if newline else 414)
    assert sent < 64 * 2**20, "the server read the whole line"


async def test_a_silent_connection_is_closed_after_the_header_timeout() -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await until_closed(reader, 3) == b""
        writer.close()


async def test_a_slow_head_gets_408_and_the_clock_restarts_per_request() -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(get("/first"))
        assert (await read_response(reader)).status == 200
        # Idle on keep-alive for longer than the header timeout: still open.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 1.0)
        writer.write(b"GET /second HTTP/1.1\r\nHost: t\r\n")
        started = asyncio.get_running_loop().time()
        closing = await until_closed(reader, 3)
        waited = asyncio.get_running_loop().time() - started
        writer.close()
    assert closing.startswith(b"HTTP/1.1 408 ")
    assert b"--client-header-timeout" in closing
    assert 0.4 < waited < 2.0
    assert srv.app.seen.paths == ["/first"]


async def test_a_stalled_body_closes_the_connection_and_the_app_sees_it() -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        assert await until_closed(reader, 3) == b""
        writer.close()
    assert srv.app.seen.disconnects == 1


async def test_a_long_response_is_not_cut_by_the_header_or_body_timeout() -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /wait HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 1.2)
        srv.app.release.set()
        resp = await read_response(reader)
        writer.close()
    assert (resp.status, resp.body) == (200, b"read 2")


async def test_endless_trailers_cut_the_connection_and_the_app_sees_it() -> None:
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ")
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < 64 * 2**20:
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
            await until_closed(reader, 5)
        writer.close()
    assert sent < 64 * 2**20, "the server read the whole trailer"
    assert srv.app.seen.disconnects == 1


async def test_past_the_cap_an_idle_connection_makes_room() -> None:
    async with door(max_connections=2) as srv:
        idle = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(get("/idle"))
            assert (await read_response(reader)).status == 200
            idle.append((reader, writer))
        assert (await exchange(srv.port, get("/new"))).status == 200
        # The oldest idle connection was closed to make room, the other is still open.
        assert await until_closed(idle[0][0], 2) == b""
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(idle[1][0].read(1), 0.3)
        for _, writer in idle:
            writer.close()


async def test_past_the_cap_with_none_idle_the_newcomer_gets_503() -> None:
    async with door(max_connections=1) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /wait HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        while srv.app.seen.paths != ["/wait"]:
            await asyncio.sleep(0.01)
        refused = await exchange(srv.port, get("/new"))
        srv.app.release.set()
        served = await read_response(reader)
        writer.close()
    assert refused.status == 503
    assert refused.headers["retry-after"] == "1"
    assert "too many connections" in refused.json()["error"]
    assert served.status == 200


async def test_pipelined_requests_after_a_body_are_all_served() -> None:
    body = b"x" * 100_000
    one = b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    async with door() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(one + get("/q") + one + get("/r"))
        statuses = [(await read_response(reader)).body for _ in range(4)]
        writer.close()
    assert statuses == [b"read 100000", b"read 0", b"read 100000", b"read 0"]
