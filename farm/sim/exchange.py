"""One HTTP exchange over raw ASGI: read the body, watch for disconnect, answer or stream.

Raw ASGI (not a framework response class) because the simulator must hold the status line
back until the first token and must learn of a disconnect while it is still deciding what to
send: a watcher task turns the server's `http.disconnect` message into the `gone` event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
SSE_TYPE = "text/event-stream"
TEXT_TYPE = "text/plain; charset=utf-8"


def encode_json(value: object) -> bytes:
    """Compact JSON as Go's encoding/json writes it (HTML characters escaped, UTF-8 kept)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


class Exchange:
    """The request side (method, path, headers, body) and the response side of one call."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Handler entry: where Ollama starts `total_duration` and `load_duration`.
        self.received_ns = time.perf_counter_ns()
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self._receive = receive
        self._send = send
        self.gone = asyncio.Event()
        self.started = False
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._body_done = False

    # ----- request ---------------------------------------------------------------------------
    async def body(self) -> bytes:
        """The whole request body (JSON bodies are small), then start watching for disconnect."""
        parts = [chunk async for chunk in self.body_chunks()]
        return b"".join(parts)

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The request body chunk by chunk, for uploads that must not sit in memory."""
        while not self._body_done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._body_done = True
                self.gone.set()
                return
            chunk = message.get("body", b"")
            self._body_done = not message.get("more_body", False)
            if chunk:
                yield chunk
        self.watch()

    def watch(self) -> None:
        """Start the disconnect watcher (only once the body has been read)."""
        if self._watcher is None and not self.gone.is_set():
            self._watcher = asyncio.create_task(self._watch_disconnect())

    async def _watch_disconnect(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    def close(self) -> None:
        """Stop the watcher at the end of the exchange."""
        if self._watcher is not None:
            self._watcher.cancel()

    # ----- response --------------------------------------------------------------------------
    async def start(self, status: int, content_type: str | None, length: int | None) -> None:
        """Send the status line and headers (Go/gin style: Content-Type, Content-Length)."""
        headers = list(self.extra_headers)
        if content_type is not None:
            headers.append((b"content-type", content_type.encode()))
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def respond(self, status: int, body: bytes, content_type: str | None) -> None:
        """A complete, non-streamed response."""
        await self.start(status, content_type if body or content_type else None, len(body))
        send_body = b"" if self.method == "HEAD" else body
        await self._send({"type": "http.response.body", "body": send_body, "more_body": False})

    async def json(self, status: int, value: object) -> None:
        """A JSON response with gin's `application/json; charset=utf-8`."""
        await self.respond(status, encode_json(value), JSON_TYPE)

    async def error(self, status: int, message: str) -> None:
        """Ollama's error body `{"error": "..."}`."""
        await self.json(status, {"error": message})

    async def chunk(self, data: bytes) -> None:
        """One piece of a streamed body, flushed at once (the stream must be started)."""
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self) -> None:
        """Finish a streamed body."""
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})
