"""`NodeDoor`, the local node's connection guard: the limits aiohttp does not enforce itself.

aiohttp bounds each request line and header field (`max_line_size`, `max_field_size`), the
number of headers, the request body (`client_max_size`) and the idle time before a request's
head is complete (`keepalive_timeout`: its keep-alive timer is armed when a connection opens
and after every response, and closes a connection still waiting for a whole head). It has no
cap on connections, no bound on a head's total size and no header timeout. The door adds
those, between asyncio and aiohttp's handler, through asyncio's protocol interface alone:

- with `--max-connections` open (less where `ulimit -n` leaves no reserve: the front door's
  `connection_cap`), a new connection is answered 503 and closed, unseen by aiohttp;
- a connection's first head (request line and headers, to the blank line) is measured as it
  arrives (`HeadMeter`): a line over `--max-request-line` (414 for the request line, else
  431), more than `--max-headers` header lines or more than `--max-header-bytes` of them
  (431), or a head not complete within `--client-header-timeout` (408) ends the connection.
  Bytes past a bound are never handed on, so nobody holds them.

The answers are the front door's (`farm.common.frontdoor.replies`: `{"error": ...}`, closing).

A refusal is a lingering close, as nginx does: the answer, then end-of-file, then whatever the
client still sends is read and dropped for `LINGER_S`, so that a client still writing reads
the answer instead of a connection reset.

A later request on a kept-alive connection is bounded by aiohttp alone (per line, header
count, and in time by `keepalive_timeout` from the previous response): where its head begins
is known only to aiohttp's private parser state. The node's clients seldom reuse a
connection: nkn-sdk opens one websocket per client and posts a few RPC calls when it connects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from farm.common.frontdoor.door import DoorLimits
from farm.common.frontdoor.replies import (
    HEADERS_TOO_LARGE,
    REQUEST_TIMEOUT,
    SERVICE_UNAVAILABLE,
    URI_TOO_LONG,
    error_response,
)
from relay.localnode.errors import HeadRefused

log = logging.getLogger(__name__)

#: Seconds a refused connection is drained before it is closed (the site's front door lingers
#: longer for 200 MB heads over TLS; the node's clients are local and send small heads).
LINGER_S = 2.0
CR = 0x0D


BUSY = error_response(SERVICE_UNAVAILABLE, "server busy: too many connections", 1)


class HeadMeter:
    """Measures one request head as its bytes arrive (pure: no I/O, no clock).

    As the front door counts: the request line and each header line (its CR counted, its LF
    not) against `max_request_line`, header lines against `max_headers`, and the bytes of the
    header lines with their line ends against `max_header_bytes`.
    """

    def __init__(self, limits: DoorLimits) -> None:
        self._limits = limits
        self._header_bytes = 0
        self._lines = 0  # complete lines: the request line, then headers
        self._line = 0  # bytes of the line not yet complete
        self._last = 0  # the last byte fed, for a CR LF split across two chunks

    def feed(self, data: bytes) -> int | None:
        """Count `data` in; the offset just past the head once it is complete, else None.

        Raises `HeadRefused` as soon as a bound is passed.
        """
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            length = self._line + newline - start
            before = data[newline - 1] if newline > 0 else self._last
            self._line, start = 0, newline + 1
            if length == 0 or (length == 1 and before == CR):
                if self._lines:
                    return start  # the blank line: the head is complete
                continue  # a blank line before the request line is ignored (RFC 9112 2.2)
            self._check_line(length)
            if self._lines:
                self._count_header(length + 1)
            self._lines += 1
        self._line += len(data) - start
        self._check_line(self._line)
        if self._lines:
            self._check_header_bytes()
        if data:
            self._last = data[-1]
        return None

    def _check_line(self, length: int) -> None:
        limit = self._limits.max_request_line
        if length <= limit:
            return
        if self._lines == 0:
            raise HeadRefused(
                URI_TOO_LONG,
                f"request line is longer than {limit} bytes (server limit --max-request-line)",
            )
        raise HeadRefused(
            HEADERS_TOO_LARGE,
            f"a header line is longer than {limit} bytes (server limit --max-request-line)",
        )

    def _count_header(self, size: int) -> None:
        """Count in a complete header line of `size` bytes (the `_lines`-th)."""
        limit = self._limits.max_headers
        if self._lines > limit:
            raise HeadRefused(
                HEADERS_TOO_LARGE, f"more than {limit} header lines (server limit --max-headers)"
            )
        self._header_bytes += size
        self._check_header_bytes()

    def _check_header_bytes(self) -> None:
        limits = self._limits
        if self._header_bytes + self._line > limits.max_header_bytes:
            raise HeadRefused(
                HEADERS_TOO_LARGE,
                f"headers are larger than {limits.max_header_bytes} bytes in all "
                "(server limit --max-header-bytes)",
            )


class NodeDoor:
    """A protocol factory for `loop.create_server`: wraps each of `inner()`'s protocols in a
    guard, and counts the connections open through it (`.open`)."""

    def __init__(self, inner: Callable[[], asyncio.BaseProtocol], limits: DoorLimits) -> None:
        self.inner = inner
        self.limits = limits
        self.open = 0

    def __call__(self) -> asyncio.Protocol:
        return _Guard(self)


class _Guard(asyncio.Protocol):
    """One connection: refused at the cap, else handed to aiohttp while its first head is in
    bounds (and, once it is complete, without further checks)."""

    def __init__(self, door: NodeDoor) -> None:
        self._door = door
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._meter: HeadMeter | None = HeadMeter(door.limits)
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        door = self._door
        if door.open >= door.limits.max_connections:
            log.warning("connection refused: %d connections open", door.open)
            self._refuse(BUSY)
            return
        door.open += 1
        self._inner = cast(asyncio.Protocol, door.inner())
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(door.limits.header_timeout_s, self._too_slow)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._lingering or self._inner is None:
            return  # drained and dropped
        if self._meter is not None:
            try:
                end = self._meter.feed(data)
            except HeadRefused as exc:
                log.info("%s", exc)
                self._refuse(error_response(exc.status, str(exc)))
                return
            if end is not None:
                self._meter = None  # the head is in: aiohttp takes it from here
                self._cancel_timer()
        self._inner.data_received(data)

    def _too_slow(self) -> None:
        self._timer = None
        seconds = self._door.limits.header_timeout_s
        message = (
            f"request head not received within {seconds:g} s (server limit --client-header-timeout)"
        )
        self._refuse(error_response(REQUEST_TIMEOUT, message))

    def _refuse(self, reply: bytes) -> None:
        """Answer `reply` and close lingering (see the module's docstring)."""
        self._cancel_timer()
        transport = self._transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        self._lingering = True
        transport.write(reply)
        if not transport.can_write_eof():  # TLS: asyncio's own shutdown drains the peer
            transport.close()
            return
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool | None:
        if self._lingering:
            return False  # the client has read the answer and stopped: close now
        return None if self._inner is None else self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        inner, self._inner = self._inner, None
        if inner is not None:
            self._door.open -= 1
            inner.connection_lost(exc)
