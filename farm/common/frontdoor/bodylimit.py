"""`BodyLimit`: ASGI middleware answering 413 `{"error": ...}` to a request body over a cap.

For apps that read their (JSON) bodies whole anyway: a declared `Content-Length` over the cap
is answered before the app runs; a chunked body is read ahead up to the cap (no more is ever
held) and replayed to the app, or answered 413 the moment it passes the cap. Paths under
`unlimited` (streamed uploads) pass untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from farm.common.frontdoor.replies import error_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOO_LARGE = 413


class BodyLimit:
    """Wraps `app`; `max_bytes` 0 means no limit (`DoorSettings.client_max_body_size`)."""

    def __init__(self, app: ASGIApp, max_bytes: int, unlimited: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.unlimited = unlimited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_bytes
        if scope["type"] != "http" or not limit or scope["path"].startswith(self.unlimited):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope["headers"])
        if length is not None:
            if length > limit:
                await _too_large(send, limit)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = error_json(
        f"request body is larger than {limit} bytes (server limit --client-max-body-size)"
    )
    await send(
        {
            "type": "http.response.start",
            "status": TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
