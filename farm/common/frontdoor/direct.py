"""`DirectLine`: a request's way to write its response straight to the client transport.

Uvicorn's ASGI `send()` costs a task switch and a message per chunk; for a token stream that
is most of the proxy's CPU, and a task switch before the first token is latency. So an app
may either start a chunked response here itself (`start`: the head it gets back is written
by the caller together with the first chunk, from a protocol callback with no task switch)
or, after starting one with `send()`, take over its body (`open`). Either way it attaches a
`Relay`, which then writes chunk frames to the transport itself; the front door's protocol
tells the relay when the client's write buffer fills or drains (so it can stop and restart
its source) and when the client leaves. The app still ends the response with
`send(..., more_body=False)` after `close()`, so uvicorn's keep-alive and pipelining
bookkeeping stays uvicorn's.

The line travels in `scope["extensions"][DIRECT_LINE]`; an app that finds none (another
server) simply keeps using `send()`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE

# The scope extension under which each request's `DirectLine` travels.
DIRECT_LINE = "farm.direct_line"
_FRAMING = (b"content-length", b"transfer-encoding")


class Relay(Protocol):
    """What writes a response body straight to a client transport."""

    def pause_reading(self) -> None:
        """The client's write buffer is full: stop producing."""

    def resume_reading(self) -> None:
        """The client's write buffer has drained: produce again."""

    def client_lost(self) -> None:
        """The client connection is gone: write nothing more to it."""


class _Connection(Protocol):
    """The parts of the front door's protocol a line uses."""

    transport: asyncio.Transport
    flow: Any  # uvicorn's FlowControl
    relay: Relay | None


class DirectLine:
    """One request's line to its client transport (made by the front door's protocol)."""

    __slots__ = ("_connection", "_cycle")

    def __init__(self, connection: _Connection, cycle: Any) -> None:
        self._connection = connection
        self._cycle = cycle  # uvicorn's RequestResponseCycle for this request

    def start(
        self, status: int, headers: list[tuple[bytes, bytes]], relay: Relay
    ) -> tuple[asyncio.Transport, bytes] | None:
        """Begin a chunked response without `send()`: the transport and the head to write
        on it (the caller adds the first chunk frame to the same write), with `relay`
        attached. None where `send()` must do it: HEAD, a status without a body, a framing
        header, a header `send()` would refuse, access logging, a client already gone.

        The head is the one uvicorn's `send()` writes: its status line, its default
        headers first, `connection: close` when the connection will not be kept.
        """
        connection, cycle = self._connection, self._cycle
        if (
            cycle.response_started
            or cycle.disconnected
            or cycle.access_log
            or cycle.scope["method"] == "HEAD"
            or not 200 <= status < 600
            or status in (204, 304)
            or connection.transport.is_closing()
        ):
            return None
        content = [STATUS_LINE[status]]
        keep_alive, says_close = cycle.keep_alive, False
        for name, value in (*cycle.default_headers, *headers):
            if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
                return None
            name = name.lower()
            if name in _FRAMING:
                return None
            if name == b"connection" and b"close" in (t.strip().lower() for t in value.split(b",")):
                keep_alive, says_close = False, True
            content.extend((name, b": ", value, b"\r\n"))
        if not keep_alive and not says_close:
            content.append(b"connection: close\r\n")
        content.append(b"transfer-encoding: chunked\r\n\r\n")
        cycle.keep_alive = keep_alive
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.chunked_encoding = True
        cycle.expected_content_length = 0
        self._attach(relay)
        return connection.transport, b"".join(content)

    def open(self, relay: Relay) -> asyncio.Transport | None:
        """After `send()` started the response: the transport to write chunk frames to,
        with `relay` attached. None unless the response is chunked (not HEAD, 204/304 or
        Content-Length) and unfinished, and the client is still there."""
        connection, cycle = self._connection, self._cycle
        if (
            not cycle.response_started
            or cycle.response_complete
            or not cycle.chunked_encoding
            or cycle.disconnected
            or connection.transport.is_closing()
        ):
            return None
        self._attach(relay)
        return connection.transport

    def close(self) -> None:
        """Stop telling the relay about the connection (before the response's last send)."""
        self._connection.relay = None

    def _attach(self, relay: Relay) -> None:
        self._connection.relay = relay
        if self._connection.flow.write_paused:
            relay.pause_reading()
