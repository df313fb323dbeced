"""`GuardedProtocol`: uvicorn's httptools protocol with the front door's limits, enforced as
the bytes arrive.

httptools holds an unfinished header line in memory however long it grows (and copies it on
every read), and uvicorn has no header timeout at all. So, per connection:

- before a read of a request head reaches the parser, its size is checked against
  `DoorLimits.head_room`: a head that has not ended within it is answered 414 (still on the
  request line) or 431, and the parser never holds more than that plus one read;
- once the head is parsed, the exact limits apply (`--max-request-line`, `--max-headers`,
  `--max-header-bytes`); the per-line walk is skipped for a head too small to break them;
- a body phase that reads on without body bytes (endless trailers) is cut at the same bound;
- one deadline: the header block must be complete `--client-header-timeout` after the
  connection opened or the request's first byte arrived (408, closed), and a body read must
  come within `--client-body-timeout` of the last one, unless the server itself has paused
  reading (closed); keep-alive idleness is uvicorn's own `timeout_keep_alive`;
- past the connection cap the idle keep-alive connection idle longest is closed to make room
  (as nginx does); with none idle, the newcomer is answered 503 once its head has arrived.

A rejected connection is answered with `{"error": ...}` and `Connection: close`, then drained
for up to `LINGER_S` after its write side is shut (nginx's lingering close), so the client
reads the answer instead of a reset.

Each request's scope carries a `farm.common.frontdoor.direct.DirectLine`; the protocol tells
the relay an app attached through it when the client's write buffer fills or drains and when
the client leaves.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from farm.common.frontdoor import replies
from farm.common.frontdoor.direct import DIRECT_LINE, DirectLine, Relay
from farm.common.frontdoor.door import Door

logger = logging.getLogger(__name__)

# What the connection is reading: between requests, a request head, or a request body.
_IDLE, _HEAD, _BODY = 0, 1, 2
_INF = math.inf
# nginx lingers up to 30 s after a rejection; 5 s lets a client finish sending what it had
# in flight (200 MB on loopback takes a fraction of that) without holding the slot long.
LINGER_S = 5.0
# A client past the connection cap gets this long (at most) to send the head it is answered
# 503 to, so that a flood of silent connections cannot hold the descriptor reserve.
BUSY_HEAD_TIMEOUT_S = 5.0
BUSY_RETRY_AFTER_S = 1


class _Rejected(Exception):
    """Raised from a parser callback to stop parsing; the reason is in `_rejection`."""


class GuardedProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol under the limits of `door` (see the module docstring).

    `door_config` makes a subclass per server with its `Door` as the class attribute.
    """

    door: ClassVar[Door]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = self.door.limits
        self.door_deadline = _INF
        self._phase = _IDLE
        self._begins = 0  # requests begun on this connection
        self._head_bytes = 0  # bytes of the current head read so far
        self._head_newline = False  # whether the current head is past its request line
        self._reading = 0  # size of the read being parsed
        self._body_seen = False  # whether the last read carried body bytes
        self._stalled_bytes = 0  # body-phase bytes read without body progress (trailers)
        self._idle = False  # listed in door.idle
        self._busy = False  # past the connection cap: answered 503
        self._lingering = False
        self._rejection: tuple[int, str] | None = None
        self.relay: Relay | None = None  # writing the current response's body directly

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        door = self.door
        now = self.loop.time()
        if len(self.connections) >= door.limits.max_connections and not door.evict_idle():
            self._busy = True
            door.warn_full(now)
            self.door_deadline = now + min(door.limits.header_timeout_s, BUSY_HEAD_TIMEOUT_S)
        else:
            self.door_deadline = now + door.limits.header_timeout_s
        super().connection_made(transport)
        door.watch(self.loop, self.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self.door_deadline = _INF
        self._leave_idle()
        relay, self.relay = self.relay, None
        if relay is not None:
            relay.client_lost()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.relay is not None:
            self.relay.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.relay is not None:
            self.relay.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # draining after an answer that closes the connection
        if self._idle:
            self._leave_idle()
        self._unset_keepalive_if_required()
        phase = self._phase
        if phase != _BODY:
            if self.door_deadline == _INF:  # the first byte of a request on a kept-alive line
                self.door_deadline = self.loop.time() + self._limits.header_timeout_s
            room = self._limits.head_room - self._head_bytes
            if len(data) > room and not _head_ends(data, room):
                self._reject_oversized_head(data, room)
                return
        begins = self._begins
        self._body_seen = False
        self._reading = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            status, message = self._rejection or (replies.BAD_REQUEST, f"invalid request: {exc}")
            self._reject(status, message)
            return
        if self._phase == _HEAD:
            self._count_head(data, phase, begins)
        elif self._phase == _BODY:
            self._count_body(len(data))

    def _count_head(self, data: bytes, phase_before: int, begins_before: int) -> None:
        """Account for a read after which a request head is still incomplete."""
        if self._begins == begins_before:
            self._head_bytes += len(data)
        elif phase_before == _IDLE and self._begins == begins_before + 1:
            self._head_bytes = len(data)
        else:
            # A pipelined request began after an earlier one ended inside this read: count
            # what the parser has reported of it (the rest is less than one read).
            self._head_bytes = len(self.url) + _header_size(self.headers)
        if not self._head_newline and b"\n" in data:
            self._head_newline = True

    def _count_body(self, size: int) -> None:
        """Restart the body clock; stop a body phase that grows without body (trailers)."""
        self.door_deadline = self.loop.time() + self._limits.body_timeout_s
        if self._body_seen:
            self._stalled_bytes = 0
            return
        self._stalled_bytes += size
        if self._stalled_bytes > self._limits.head_room:
            self._reject(replies.HEADERS_TOO_LARGE, "request trailer fields are too large")

    # Parser callbacks (uvicorn's, with the exact limits in front)

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self._begins += 1
        self._head_newline = False
        if self.door_deadline == _INF:
            self.door_deadline = self.loop.time() + self._limits.header_timeout_s
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self.door_deadline = _INF
        self._stalled_bytes = 0
        self._check_head()
        if self._busy:
            self._fail(replies.SERVICE_UNAVAILABLE, "server busy: too many connections")
        try:
            super().on_headers_complete()
        except UnicodeDecodeError:
            # uvicorn reads the target as ASCII; raw bytes beyond it are not a valid URL.
            self._fail(replies.BAD_REQUEST, "request target is not ASCII (percent-encode it)")
        if self.cycle is not None and self.cycle.scope is self.scope:
            # uvicorn types extension values as dicts; ours is the line object itself.
            line = DirectLine(self, self.cycle)
            self.scope["extensions"] = {DIRECT_LINE: line}  # type: ignore[dict-item]

    def _check_head(self) -> None:
        """The exact head limits; uvicorn's parser callbacks stay as they are (no per-header
        call of ours on the hot path)."""
        limits = self._limits
        if len(self.url) > limits.max_request_line:
            self._fail(
                replies.URI_TOO_LONG,
                f"request line is longer than {limits.max_request_line} bytes "
                "(server limit --max-request-line)",
            )
        if len(self.headers) > limits.max_headers:
            self._fail(
                replies.HEADERS_TOO_LARGE,
                f"more than {limits.max_headers} header lines (server limit --max-headers)",
            )
        # A head read in fewer bytes than both limits cannot break either.
        if self._head_bytes + self._reading <= limits.small_head:
            return
        longest = max((len(n) + len(v) + 2 for n, v in self.headers), default=0)
        if longest > limits.max_request_line:
            self._fail(
                replies.HEADERS_TOO_LARGE,
                f"a header line is longer than {limits.max_request_line} bytes "
                "(server limit --max-request-line)",
            )
        if _header_size(self.headers) > limits.max_header_bytes:
            self._fail(
                replies.HEADERS_TOO_LARGE,
                f"headers are larger than {limits.max_header_bytes} bytes in all "
                "(server limit --max-header-bytes)",
            )

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self.door_deadline = _INF
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None and not self._idle:
            self._idle = True
            self.door.idle[self] = None

    # The door's side

    def expire(self, now: float) -> None:
        """The deadline passed: close, with a 408 when a request head was under way."""
        self.door_deadline = _INF
        transport = self.transport
        if self._lingering or transport.is_closing():
            transport.abort()
        elif self._phase == _BODY:
            if self.flow.read_paused:  # the server is not reading: not the client's delay
                self.door_deadline = now + self._limits.body_timeout_s
                return
            logger.info("%s: request body stalled; closing", self._peer())
            transport.abort()
        elif self._response_under_way():
            transport.abort()
        elif self._phase == _HEAD:
            logger.info("%s: request head not complete in time; closing", self._peer())
            seconds = self._limits.header_timeout_s
            transport.write(
                replies.error_response(
                    replies.REQUEST_TIMEOUT,
                    f"request head not received within {seconds:g} s "
                    "(server limit --client-header-timeout)",
                )
            )
            transport.close()
        else:
            transport.close()

    def evict(self) -> bool:
        """Close this idle keep-alive connection to make room for a new one."""
        self._idle = False
        if self.transport.is_closing() or self._phase != _IDLE:
            return False
        self.transport.close()
        return True

    # Helpers

    def _fail(self, status: int, message: str) -> None:
        self._rejection = (status, message)
        raise _Rejected(message)

    def _reject_oversized_head(self, data: bytes, room: int) -> None:
        limits = self._limits
        if self._head_newline or data.find(b"\n", 0, max(room, 0)) >= 0:
            self._reject(
                replies.HEADERS_TOO_LARGE,
                f"request headers are larger than {limits.max_header_bytes} bytes "
                "(server limits --max-header-bytes, --max-request-line)",
            )
        else:
            self._reject(
                replies.URI_TOO_LONG,
                f"request line is longer than {limits.max_request_line} bytes "
                "(server limit --max-request-line)",
            )

    def _reject(self, status: int, message: str) -> None:
        """Answer `status` and close; if a response is under way, just stop and close after it."""
        self._rejection = None
        logger.info("%s: %d %s", self._peer(), status, message)
        self._lingering = True
        self._phase = _IDLE
        transport = self.transport
        if self._response_under_way():
            # The bytes on the wire belong to an earlier response (pipelining) or to this
            # request's app: no room for an answer of ours.
            self.cycle.keep_alive = False
            if self.cycle.response_started:
                self.flow.pause_reading()
            else:
                transport.abort()
            return
        retry = BUSY_RETRY_AFTER_S if status == replies.SERVICE_UNAVAILABLE else None
        transport.write(replies.error_response(status, message, retry))
        if transport.can_write_eof():
            transport.write_eof()
            self.flow.resume_reading()
            self.door_deadline = self.loop.time() + LINGER_S
        else:
            transport.close()

    def _response_under_way(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _leave_idle(self) -> None:
        if self._idle:
            self._idle = False
            self.door.idle.pop(self, None)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "client"


def _header_size(headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes of these header lines on the wire (`name: value` CRLF, whitespace aside)."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def _head_ends(data: bytes, room: int) -> bool:
    """Whether a request head ends within `room` bytes of `data` (a blank line: CRLF CRLF, or
    bare LFs, which llhttp also accepts), including a blank line begun in the previous read."""
    if room <= 0:
        return False
    if data.startswith((b"\r\n", b"\n")):
        return True
    return data.find(b"\n\r\n", 0, room + 3) >= 0 or data.find(b"\n\n", 0, room + 2) >= 0
