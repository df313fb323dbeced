"""`EarlyHead`: a streamed response's head and first chunk go to the client from the upstream
connection's own callback, the moment the backend's head is parsed.

Without it the head waits for the handler task to be woken and run, and on a loaded loop
(many streams starting together) that wait is behind every other ready task: most of the
proxy's share of time to first token. With it, the head and the first chunk leave in one
write from `Connection.data_received`, and the connection relays the body directly (see
`farm.proxy.upstream`); the handler task does the bookkeeping later and ends the response.

It applies only where nothing must change the head or the body on the way: a chunked stream
(no Content-Length), no CORS (which adds headers in a `send()` wrapper), and a front door
that offers a `DirectLine`. Named-key accounting only watches the body: `tap` makes the
tally that the connection feeds with every byte it relays.
"""

from __future__ import annotations

from collections.abc import Callable

from farm.common.frontdoor.direct import DirectLine
from farm.proxy.exchange import Exchange
from farm.proxy.headers import downstream_response_headers, header_value
from farm.proxy.link import ClientLink
from farm.proxy.upstream import Connection

RawHeaders = list[tuple[bytes, bytes]]
#: Given the stream's kind and the time its head left, what sees each body byte relayed.
Tap = Callable[[str, float], Callable[[bytes], None]]


def stream_kind(headers: RawHeaders) -> str:
    """The exchange's `stream_kind` for a streamed response with these headers."""
    ctype = header_value(headers, b"content-type") or b""
    return "sse" if b"event-stream" in ctype else "ndjson" if b"ndjson" in ctype else "other"


class EarlyHead:
    """Set as `Connection.on_head` before the response arrives; `started` once it fired."""

    __slots__ = ("line", "ex", "link", "idle_s", "tap", "started")

    def __init__(
        self,
        line: DirectLine,
        ex: Exchange,
        link: ClientLink,
        idle_s: float,
        tap: Tap | None = None,
    ) -> None:
        self.line = line
        self.ex = ex
        self.link = link
        self.idle_s = idle_s
        self.tap = tap
        self.started = False

    def __call__(self, conn: Connection) -> None:
        """Start the response from `conn`'s head if it is a chunked stream; else leave it
        to the handler task (nothing has been written)."""
        if self.link.abort is not None:
            return  # the handler is being cancelled (client gone, a deadline): its answer
        out_headers, streaming = downstream_response_headers(conn.raw_headers)
        if not streaming or conn.error is not None:
            return
        begun = self.line.start(conn.status, out_headers, conn)
        if begun is None:
            return
        sink, head = begun
        ex, link = self.ex, self.link
        now = conn.loop.time()
        ex.status = conn.status
        ex.ttfb_s = now - ex.started
        ex.stream_kind = stream_kind(out_headers)
        ex.response_started = True
        # The header phase is over: from now on the idle deadline applies.
        link.in_header_phase = False
        link.deadline = now + self.idle_s
        if self.tap is not None:
            conn.tap = self.tap(ex.stream_kind, now)
        conn.relay_to(sink, link, self.idle_s, head)
        self.started = True
