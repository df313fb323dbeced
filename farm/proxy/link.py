"""The client side of one exchange: its request body, and noticing when it leaves or stalls.

Uvicorn's `send()` returns silently after the client has gone, so a forwarder that only
writes never learns about it; and Ollama sends no header until the first token, so a
forwarder waiting for headers is not writing either (the "pre-header blind
spot"). `ClientLink` therefore reads `receive()` itself from the moment the
request arrives: the request body first, then a watcher task waiting for `http.disconnect`.
When the client leaves, or a deadline passes, it cancels the handler task, which closes the
upstream connection: that is the only way to free an Ollama slot.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

from farm.proxy.errors import BodyTooLargeError

Receive = Any  # ASGI receive callable
Message = dict[str, Any]


class Abort(enum.Enum):
    """Why a `ClientLink` cancelled its handler."""

    CLIENT_LEFT = "client_left"
    HEADER_TIMEOUT = "header_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    BODY_TOO_LARGE = "body_too_large"


class ClientDisconnected(Exception):
    """The client closed its connection while its request body was being read."""


class ClientLink:
    """Reads one request's body, watches for the client leaving, and holds its deadline.

    `deadline` is a loop time; the app's `DeadlineSweeper` calls `expire()` once it passes.
    """

    __slots__ = (
        "_receive",
        "_task",
        "_watcher",
        "abort",
        "deadline",
        "in_header_phase",
        "body_bytes",
        "on_body_done",
    )

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._task = task
        self._watcher: asyncio.Task[None] | None = None
        self.abort: Abort | None = None
        self.deadline = math.inf
        self.in_header_phase = True
        self.body_bytes = 0
        self.on_body_done: Callable[[], None] | None = None

    async def read_body(self, limit: int | None) -> bytes:
        """Read the whole request body (inference bodies are small), then start watching."""
        parts: list[bytes] = []
        async for chunk in self._chunks(limit):
            parts.append(chunk)
        self.watch()
        return b"".join(parts)

    async def stream_body(self, limit: int | None) -> AsyncIterator[bytes]:
        """Yield the request body as it arrives (for the upstream writer), then start watching.

        A client that leaves mid-upload aborts the exchange like any other disconnect.
        """
        try:
            async for chunk in self._chunks(limit):
                yield chunk
        except ClientDisconnected:
            self._cancel(Abort.CLIENT_LEFT)
            raise
        except BodyTooLargeError:
            self._cancel(Abort.BODY_TOO_LARGE)
            raise
        # The upload is complete: from now on the backend is thinking, so the header
        # deadline starts (a multi-GB upload must not count against it).
        self.watch()
        if self.on_body_done is not None:
            self.on_body_done()

    async def _chunks(self, limit: int | None) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                self.body_bytes += len(chunk)
                if limit is not None and self.body_bytes > limit:
                    raise BodyTooLargeError(f"request body is larger than {limit} bytes")
                yield chunk
            if not message.get("more_body", False):
                return

    def watch(self) -> None:
        """Start waiting for `http.disconnect` (the body has been read, so we own receive)."""
        if self._watcher is None and self.abort is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._cancel(Abort.CLIENT_LEFT)
                return

    def expire(self) -> None:
        """Called by the sweeper when `deadline` has passed."""
        self._cancel(Abort.HEADER_TIMEOUT if self.in_header_phase else Abort.IDLE_TIMEOUT)

    def _cancel(self, reason: Abort) -> None:
        if self.abort is None:
            self.abort = reason
            self.deadline = math.inf
            self._task.cancel()

    def close(self) -> None:
        """Stop watching; synchronous, so no cancel can slip in after the exchange ended."""
        self.deadline = math.inf
        if self._watcher is not None:
            self._watcher.cancel()


class DeadlineSweeper:
    """One timer for all exchanges: expires links whose deadline has passed.

    A per-chunk `asyncio.timeout` would create and cancel a timer handle for every token;
    here the hot path only stores a float, and this task checks all links a few times a second.
    """

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self.links: set[ClientLink] = set()

    async def run(self) -> None:
        """Sweep until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            for link in [link for link in self.links if link.deadline <= now]:
                link.expire()
