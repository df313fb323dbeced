"""One streamed request through a relay: `RelayStream` yields its lines in `seq` order.

It reads both paths alike (the fast path's items arrive as the seed's frame types): lines are
held until their turn, duplicates dropped, gaps reported as `StreamGapError` once the end came
and the grace passed; every frame's arrival is timed for the bench. On the fast path the stream
also resends its `relay.http` until the relay is heard from (the DM may be lost), waits longer
after the end (the relay repairs gaps), and waits for a `begin` the end says was sent.
Leaving early sends `relay.cancel` (on the fast path resent until the end arrives).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from relay.client.mux import ClientStats, FastEnd
from relay.errors import ClientTimeout, RemoteError, StreamGapError
from relay.frames import (
    Cancel,
    Frame,
    HttpRequest,
    Id,
    Keepalive,
    LineEntry,
    Response,
    ResponseBegin,
    ResponseEnd,
    ResponseLines,
)
from relay.muxframes import MUX_CAP

#: After the end, a fast-path stream waits this long at least for repairs of lost lines.
FAST_END_GRACE_S = 10.0

Item = tuple[Frame, float, int]


class StreamOwner(Protocol):
    """What a stream needs of its client (`relay.client.peer.RelayClient`)."""

    end_grace_s: float
    idle_timeout_s: float
    resend_s: float
    stats: ClientStats
    _waiters: dict[Id, asyncio.Queue[Item]]
    _fast_ids: set[Id]

    async def negotiate(self) -> bool:
        """Whether to use the fast path."""
        ...

    async def _send(self, frame: Frame) -> None: ...

    def _cancel_until_end(self, rid: Id) -> None: ...


@dataclass(frozen=True, slots=True)
class Arrival:
    """One frame as the client received it: kind, `perf_counter` time, DM size, line count.

    On the fast path one DM carries items of several streams: `dm_b` is the DM's size on the
    first item of each stream in it and 0 on its other items.
    """

    kind: str
    arrival_s: float
    dm_b: int
    lines: int


@dataclass(frozen=True, slots=True)
class StreamLine:
    """One line of a streamed answer, in order, with the arrival time of its frame."""

    seq: int
    line: str
    arrival_s: float
    truncated: bool = False


@dataclass(slots=True)
class StreamResult:
    """What a stream showed: begin/end frames, every frame's arrival, duplicates dropped."""

    request_id: Id
    sent_s: float = 0.0
    begin: ResponseBegin | None = None
    end: ResponseEnd | None = None
    frames: list[Arrival] = field(default_factory=list)
    duplicates: int = 0
    lines: int = 0
    fast: bool = False

    @property
    def first_line_s(self) -> float | None:
        """Seconds from sending the request to the first frame carrying lines."""
        first = next((f for f in self.frames if f.lines), None)
        return None if first is None else first.arrival_s - self.sent_s

    @property
    def total_s(self) -> float | None:
        """Seconds from sending the request to the end frame."""
        last = next((f for f in reversed(self.frames) if f.kind == "end"), None)
        return None if last is None else last.arrival_s - self.sent_s

    @property
    def dm_bytes(self) -> int:
        """Bytes of every DM received for this request (shared DMs counted once overall)."""
        return sum(f.dm_b for f in self.frames)


class RelayStream:
    """One streamed request: an async context manager and an async iterator of `StreamLine`s."""

    def __init__(self, client: StreamOwner, request: HttpRequest, timeout_s: float) -> None:
        """Built by `RelayClient.stream()`; the request is sent on `__aenter__`."""
        self._client = client
        self.request = request
        self._timeout_s = timeout_s
        self.result = StreamResult(request.id)
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._finished = False
        self._held: dict[int, tuple[LineEntry, float]] = {}
        self._asked_s = 0.0

    async def __aenter__(self) -> RelayStream:
        client = self._client
        if await client.negotiate():
            self.request = dataclasses.replace(self.request, caps=(MUX_CAP,))
            self.result.fast = True
            client._fast_ids.add(self.request.id)
        client._waiters[self.request.id] = self._queue
        self.result.sent_s = self._asked_s = time.perf_counter()
        await client._send(self.request)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rid = self.request.id
        try:
            if not self._finished:
                # The caller stopped early (break, error, timeout): free the relay's slot.
                await self._client._send(Cancel(rid))
                if self.result.fast:
                    self._client._cancel_until_end(rid)
        finally:
            if self._client._waiters.get(rid) is self._queue:
                del self._client._waiters[rid]
            if not self.result.fast or self._finished:
                self._client._fast_ids.discard(rid)

    def __aiter__(self) -> AsyncIterator[StreamLine]:
        return self._lines()

    async def lines(self) -> list[StreamLine]:
        """Read the whole stream."""
        return [line async for line in self]

    async def _lines(self) -> AsyncIterator[StreamLine]:
        held = self._held
        next_seq = 1
        deadline = self.result.sent_s + self._timeout_s
        end: ResponseEnd | None = None
        while end is None or next_seq <= end.last_seq or self._awaits_begin(end):
            frame = await self._next(deadline, end)
            if isinstance(frame, ResponseLines):
                arrival = self.result.frames[-1].arrival_s
                for entry in frame.lines:
                    if entry.seq < next_seq or entry.seq in held:
                        self.result.duplicates += 1
                    else:
                        held[entry.seq] = (entry, arrival)
                while next_seq in held:
                    entry, at = held.pop(next_seq)
                    self.result.lines += 1
                    next_seq += 1
                    yield StreamLine(entry.seq, entry.line, at, entry.truncated)
            elif isinstance(frame, ResponseBegin):
                self.result.begin = frame
            elif isinstance(frame, ResponseEnd) and end is None:
                end = self.result.end = frame
                grace = self._client.end_grace_s
                if self.result.fast and frame.ok:
                    # The relay repairs what was lost; a failed stream is not worth the wait.
                    grace = max(grace, FAST_END_GRACE_S)
                deadline = min(deadline, time.perf_counter() + grace)
            elif isinstance(frame, Response):
                self._finished = True
                raise RemoteError(error_of(frame), frame.status)
        self._finished = True
        if not end.ok:
            status = None if self.result.begin is None else self.result.begin.status
            raise RemoteError(end.error or f"HTTP {status}", status)

    def _awaits_begin(self, end: ResponseEnd) -> bool:
        return isinstance(end, FastEnd) and end.begun and self.result.begin is None

    async def _next(self, deadline: float, end: ResponseEnd | None) -> Frame | None:
        """The next frame; None after resending a fast-path request nobody answered yet."""
        now = time.perf_counter()
        wait = deadline - now if end is not None else min(deadline - now, self._idle())
        resend = self.result.fast and not self.result.frames
        if resend:
            wait = min(wait, self._asked_s + self._client.resend_s - now)
        try:
            frame, arrival, size = await asyncio.wait_for(self._queue.get(), max(0.0, wait))
        except TimeoutError:
            now = time.perf_counter()
            if resend and now < deadline and self._idle() > 0:
                self._asked_s = now
                self._client.stats.requests_resent += 1
                await self._client._send(self.request)
                return None
            if end is not None:
                self._finished = True
                if self.result.fast and not end.ok:
                    raise RemoteError(end.error or "failed", None) from None
                first = self.result.lines + 1
                missing = tuple(s for s in range(first, end.last_seq + 1) if s not in self._held)
                raise StreamGapError(missing, end.last_seq) from None
            raise ClientTimeout("the relay went silent or the total timeout passed") from None
        lines = len(frame.lines) if isinstance(frame, ResponseLines) else 0
        self.result.frames.append(Arrival(_kind(frame), arrival, size, lines))
        return frame

    def _idle(self) -> float:
        last = self.result.frames[-1].arrival_s if self.result.frames else self.result.sent_s
        return last + self._client.idle_timeout_s - time.perf_counter()


def _kind(frame: Frame) -> str:
    kinds: dict[type, str] = {
        ResponseBegin: "begin",
        ResponseLines: "lines",
        Keepalive: "keepalive",
        ResponseEnd: "end",
        FastEnd: "end",
        Response: "response",
    }
    return kinds.get(type(frame), type(frame).__name__)


def error_of(frame: Any) -> str:
    """The `error` text of a refusal frame, or what was unexpected about it."""
    error = getattr(frame, "error", None)
    return error if isinstance(error, str) else f"unexpected {type(frame).__name__}"
