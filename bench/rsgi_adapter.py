"""`RsgiAdapter`: an ASGI application served through granian's RSGI interface.

It lets the benchmark measure RSGI without porting the proxy: each request becomes an ASGI
scope, `receive()` reads the RSGI body and then waits for `client_disconnect()`, and `send()`
maps the ASGI response messages onto `response_bytes` (one-shot) or `response_stream`. The
app's lifespan runs in `__rsgi_init__` / `__rsgi_del__`.

What the mapping cannot carry: RSGI hands over the percent-decoded path only, so `raw_path` is
re-encoded from it and `/a%2Fb` reaches the app as `/a/b` (a proxy rejecting encoded slashes
cannot see them); header names and values travel as str, so each request pays a latin-1
round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from typing import Any
from urllib.parse import quote

Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Coroutine[Any, Any, None],
]
# Bodies announced at most this long are read in one call; larger ones are streamed.
WHOLE_BODY_BYTES = 64 * 1024
_SAFE_PATH = "/!$&'()*+,;=:@-._~"


def _address(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


class _Exchange:
    """One request: the ASGI `receive` and `send` over one RSGI protocol object."""

    __slots__ = ("_proto", "_body", "_whole", "_done", "_status", "_headers", "_stream")

    def __init__(self, proto: Any, whole: bool) -> None:
        self._proto = proto
        self._whole = whole
        self._body: AsyncIterator[bytes] | None = None
        self._done = False
        self._status = 200
        self._headers: list[tuple[str, str]] = []
        self._stream: Any = None

    async def receive(self) -> Message:
        if self._done:
            await self._proto.client_disconnect()
            return {"type": "http.disconnect"}
        if self._whole:
            self._done = True
            return {"type": "http.request", "body": await self._proto(), "more_body": False}
        if self._body is None:
            self._body = self._proto.__aiter__()
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            self._done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = message["status"]
            self._headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", ())
            ]
            return
        if kind != "http.response.body":
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        try:
            if self._stream is None:
                if not more:
                    self._proto.response_bytes(self._status, self._headers, body)
                    return
                self._stream = self._proto.response_stream(self._status, self._headers)
            if body:
                await self._stream.send_bytes(body)
            if not more:
                # granian ends a streamed response when its transport is released; the
                # app's disconnect watcher still holds this exchange, so let go of it here.
                self._stream = None
        except RuntimeError:
            # RSGIProtocolClosed: the client left. Uvicorn's send() returns silently then, and
            # the app learns of it from receive(), so do the same.
            return


class RsgiAdapter:
    """Serve the ASGI `app` over RSGI (HTTP only; the app's lifespan on worker start/stop)."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app
        self._lifespan: asyncio.Queue[Message] | None = None
        self._replies: asyncio.Queue[Message] | None = None
        self._task: asyncio.Task[None] | None = None

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()]
        length = scope.headers.get("content-length")
        whole = length is not None and length.isdigit() and int(length) <= WHOLE_BODY_BYTES
        if scope.method in ("GET", "HEAD") and length is None:
            whole = True
        path = scope.path
        asgi_scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": path,
            "raw_path": quote(path, safe=_SAFE_PATH).encode("ascii"),
            "query_string": scope.query_string.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "client": _address(scope.client),
            "server": _address(scope.server),
        }
        exchange = _Exchange(proto, whole)
        await self.app(asgi_scope, exchange.receive, exchange.send)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._lifespan_step("startup"))

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._lifespan_step("shutdown"))

    async def _lifespan_step(self, step: str) -> None:
        if self._task is None:
            self._lifespan, self._replies = asyncio.Queue(), asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}}
            self._task = asyncio.get_running_loop().create_task(
                self.app(scope, self._lifespan.get, self._replies.put)
            )
        assert self._lifespan is not None and self._replies is not None
        await self._lifespan.put({"type": f"lifespan.{step}"})
        reply = await self._replies.get()
        if reply["type"] != f"lifespan.{step}.complete":
            raise RuntimeError(f"ASGI lifespan {step} failed: {reply.get('message', reply)}")
