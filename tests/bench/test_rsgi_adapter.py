"""`RsgiAdapter` maps an ASGI app onto RSGI calls, checked against a hand-written RSGI protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from bench.rsgi_adapter import RsgiAdapter

pytestmark = pytest.mark.anyio


class Headers:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def get(self, key: str, default: Any = None) -> Any:
        return next((v for k, v in self._pairs if k == key), default)


class Scope:
    proto = "http"
    http_version = "1.1"
    scheme = "http"
    client = "127.0.0.1:50000"
    server = "127.0.0.1:8080"

    def __init__(self, method: str, path: str, headers: list[tuple[str, str]]) -> None:
        self.method, self.path, self.query_string = method, path, "a=1"
        self.headers = Headers(headers)


class Transport:
    def __init__(self, proto: Protocol) -> None:
        self.proto = proto

    async def send_bytes(self, data: bytes) -> None:
        if self.proto.gone.is_set():
            raise RuntimeError("protocol closed")  # what RSGIProtocolClosed is
        self.proto.sent.append(data)


class Protocol:
    """The RSGI calls the adapter makes, recorded."""

    def __init__(self, body: list[bytes]) -> None:
        self.body = body
        self.gone = asyncio.Event()
        self.sent: list[bytes] = []
        self.response: tuple[int, list[tuple[str, str]], bytes | None] | None = None

    async def __call__(self) -> bytes:
        return b"".join(self.body)

    async def _iter(self) -> AsyncIterator[bytes]:
        for chunk in self.body:
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def client_disconnect(self) -> None:
        await self.gone.wait()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.response = (status, headers, body)

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Transport:
        self.response = (status, headers, None)
        return Transport(self)


def echo_app(seen: list[Any]) -> Callable[..., Coroutine[Any, Any, None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        messages = [await receive()]
        while messages[-1].get("more_body"):
            messages.append(await receive())
        seen.append(messages)
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"b")]})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two", "more_body": False})

    return app


async def test_a_request_becomes_an_asgi_scope_and_a_streamed_response() -> None:
    seen: list[Any] = []
    proto = Protocol([b"x" * 10])
    scope = Scope("POST", "/api/a b", [("content-length", "10"), ("x-y", "z")])
    await RsgiAdapter(echo_app(seen)).__rsgi__(scope, proto)
    asgi, messages = seen
    assert (asgi["method"], asgi["path"], asgi["raw_path"]) == ("POST", "/api/a b", b"/api/a%20b")
    assert asgi["headers"] == [(b"content-length", b"10"), (b"x-y", b"z")]
    assert (asgi["query_string"], asgi["client"]) == (b"a=1", ("127.0.0.1", 50000))
    assert messages == [{"type": "http.request", "body": b"x" * 10, "more_body": False}]
    assert proto.response == (201, [("x-a", "b")], None) and proto.sent == [b"one", b"two"]


async def test_a_large_body_is_streamed_chunk_by_chunk() -> None:
    seen: list[Any] = []
    proto = Protocol([b"a" * 70_000, b"b" * 70_000])
    scope = Scope("POST", "/api/blobs/x", [("content-length", "140000")])
    await RsgiAdapter(echo_app(seen)).__rsgi__(scope, proto)
    assert [len(m["body"]) for m in seen[1]] == [70_000, 70_000, 0]
    assert seen[1][-1]["more_body"] is False


async def test_after_the_body_receive_waits_for_the_client_to_leave() -> None:
    proto = Protocol([])
    got: list[dict[str, Any]] = []
    body_read = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        got.append(await receive())
        body_read.set()
        got.append(await receive())

    task = asyncio.ensure_future(RsgiAdapter(app).__rsgi__(Scope("GET", "/", []), proto))
    await asyncio.wait_for(body_read.wait(), 5)
    assert got == [{"type": "http.request", "body": b"", "more_body": False}]
    assert not task.done()
    proto.gone.set()
    await asyncio.wait_for(task, 5)
    assert got[-1] == {"type": "http.disconnect"}


async def test_send_after_the_client_left_returns_quietly_as_uvicorns_does() -> None:
    proto = Protocol([])
    proto.gone.set()
    await RsgiAdapter(echo_app([])).__rsgi__(Scope("GET", "/", []), proto)
    assert proto.sent == []


def test_the_apps_lifespan_runs_at_worker_start_and_stop() -> None:
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            events.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    loop = asyncio.new_event_loop()
    try:
        adapter = RsgiAdapter(app)
        adapter.__rsgi_init__(loop)
        adapter.__rsgi_del__(loop)
    finally:
        loop.close()
    assert events == ["lifespan.startup", "lifespan.shutdown"]
