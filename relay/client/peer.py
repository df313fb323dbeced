"""The peer client: call a relay over a `Transport` and reassemble its answers.

`RelayClient(transport, relay_address)` sends `relay.http` and returns a whole `Response`
(`request()`) or a `RelayStream` (`stream()`) that yields lines in `seq` order, drops
duplicates, reports gaps as `StreamGapError`, times every frame's arrival for the bench, honours
keepalives and a total timeout, and sends `relay.cancel` when the caller stops early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from relay.errors import ClientTimeout, FrameError, RemoteError, StreamGapError
from relay.frames import (
    MAX_TIMEOUT_MS,
    Cancel,
    Frame,
    HttpRequest,
    HttpSpec,
    Id,
    Info,
    InfoRequest,
    Keepalive,
    LineEntry,
    Ping,
    Pong,
    Response,
    ResponseBegin,
    ResponseEnd,
    ResponseLines,
    decode,
    encode,
)
from relay.transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One frame as the client received it: kind, `perf_counter` time, DM size, line count."""

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
        """Bytes of every DM received for this request."""
        return sum(f.dm_b for f in self.frames)


_Item = tuple[Frame, float, int]


class RelayClient:
    """A peer of one relay; use as `async with RelayClient(started_transport, addr) as c:`."""

    def __init__(
        self,
        transport: Transport,
        relay_address: str,
        *,
        timeout_s: float = 300.0,
        idle_timeout_s: float = 35.0,
        end_grace_s: float = 2.0,
    ) -> None:
        """`idle_timeout_s` should exceed the relay's keepalive interval (10 s by default)."""
        self._transport = transport
        self.relay_address = relay_address
        self.timeout_s = timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.end_grace_s = end_grace_s
        self._waiters: dict[Id, asyncio.Queue[_Item]] = {}
        self._kinds: dict[Id, type] = {}  # pings and infos waiting, by the reply they expect
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RelayClient:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading replies (the transport stays the caller's to close)."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait({self._reader})
            self._reader = None

    async def ping(self, timeout_s: float = 10.0) -> tuple[Pong, float]:
        """Ping the relay; return its pong and the round trip in seconds."""
        rid = _new_id()
        with self._waiting(rid, Pong) as queue:
            started = time.perf_counter()
            await self._send(Ping(rid))
            frame, arrival, _ = await self._expect(queue, started + timeout_s)
        if not isinstance(frame, Pong):
            raise RemoteError(_error_of(frame))
        return frame, arrival - started

    async def info(self, timeout_s: float = 10.0) -> Info:
        """Ask the relay for its services, TLS default, workers and body cap."""
        rid = _new_id()
        with self._waiting(rid, Info) as queue:
            await self._send(InfoRequest(rid))
            frame, _, _ = await self._expect(queue, time.perf_counter() + timeout_s)
        if not isinstance(frame, Info):
            raise RemoteError(_error_of(frame))
        return frame

    async def request(self, timeout_s: float | None = None, **req: Any) -> Response:
        """One non-streamed call (`req` as `HttpSpec` fields); the relay's `relay.response`.

        Raises `RemoteError` when the relay reports an error (refused, busy, timeout, upstream
        unreachable); an upstream answer with any HTTP status is returned.
        """
        total = self.timeout_s if timeout_s is None else timeout_s
        spec = _spec(req, stream=False, timeout_s=total)
        request = HttpRequest(_new_id(), spec)
        with self._waiting(request.id) as queue:
            await self._send(request)
            try:
                frame, _, _ = await self._expect(queue, time.perf_counter() + total)
            except ClientTimeout:
                await self._send(Cancel(request.id))
                raise
        if not isinstance(frame, Response):
            raise RemoteError(f"unexpected {type(frame).__name__}")
        if frame.error is not None:
            # The relay failed or refused; an upstream HTTP error status is returned as is.
            raise RemoteError(frame.error, frame.status)
        return frame

    def stream(self, timeout_s: float | None = None, **req: Any) -> RelayStream:
        """A streamed call; `async with client.stream(...) as s: async for line in s: ...`."""
        total = self.timeout_s if timeout_s is None else timeout_s
        request = HttpRequest(_new_id(), _spec(req, stream=True, timeout_s=total))
        return RelayStream(self, request, total)

    async def _read(self) -> None:
        async for message in self._transport.incoming():
            arrival = time.perf_counter()
            if message.src != self.relay_address:
                log.debug("ignored DM from %s", message.src)
                continue
            try:
                frame = decode(message.payload)
            except FrameError as exc:
                log.warning("malformed frame from relay: %s", exc.reason)
                continue
            rid = getattr(frame, "id", None)
            if rid is None and isinstance(frame, Pong | Info):
                # The seed's relay answers without an id: give it to the oldest such waiter.
                rid = next((k for k, kind in self._kinds.items() if kind is type(frame)), None)
            queue = None if rid is None else self._waiters.get(rid)
            if queue is None:
                log.debug("frame for no waiting request: %s", type(frame).__name__)
                continue
            queue.put_nowait((frame, arrival, len(message.payload.encode("utf-8"))))

    @contextlib.contextmanager
    def _waiting(self, rid: Id, reply: type | None = None) -> Any:
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._waiters[rid] = queue
        if reply is not None:
            self._kinds[rid] = reply
        try:
            yield queue
        finally:
            self._waiters.pop(rid, None)
            self._kinds.pop(rid, None)

    async def _send(self, frame: Frame) -> None:
        await self._transport.send(self.relay_address, encode(frame))

    async def _expect(self, queue: asyncio.Queue[_Item], deadline: float) -> _Item:
        try:
            return await asyncio.wait_for(queue.get(), max(0.0, deadline - time.perf_counter()))
        except TimeoutError:
            raise ClientTimeout("no answer from the relay in time") from None


class RelayStream:
    """One streamed request: an async context manager and an async iterator of `StreamLine`s."""

    def __init__(self, client: RelayClient, request: HttpRequest, timeout_s: float) -> None:
        """Built by `RelayClient.stream()`; the request is sent on `__aenter__`."""
        self._client = client
        self.request = request
        self._timeout_s = timeout_s
        self.result = StreamResult(request.id)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._finished = False
        self._held: dict[int, tuple[LineEntry, float]] = {}

    async def __aenter__(self) -> RelayStream:
        self._client._waiters[self.request.id] = self._queue
        self.result.sent_s = time.perf_counter()
        await self._client._send(self.request)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._finished:
                # The caller stopped early (break, error, timeout): free the relay's slot.
                await self._client._send(Cancel(self.request.id))
        finally:
            self._client._waiters.pop(self.request.id, None)

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
        while end is None or next_seq <= end.last_seq:
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
            elif isinstance(frame, ResponseEnd):
                end = self.result.end = frame
                deadline = min(deadline, time.perf_counter() + self._client.end_grace_s)
            elif isinstance(frame, Response):
                self._finished = True
                raise RemoteError(_error_of(frame), frame.status)
        self._finished = True
        if not end.ok:
            status = None if self.result.begin is None else self.result.begin.status
            raise RemoteError(end.error or f"HTTP {status}", status)

    async def _next(self, deadline: float, end: ResponseEnd | None) -> Frame:
        now = time.perf_counter()
        wait = deadline - now if end is not None else min(deadline - now, self._idle())
        try:
            frame, arrival, size = await asyncio.wait_for(self._queue.get(), max(0.0, wait))
        except TimeoutError:
            if end is not None:
                self._finished = True
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
    kinds = {
        ResponseBegin: "begin",
        ResponseLines: "lines",
        Keepalive: "keepalive",
        ResponseEnd: "end",
        Response: "response",
    }
    return kinds.get(type(frame), type(frame).__name__)


def _error_of(frame: Frame) -> str:
    error = getattr(frame, "error", None)
    return error if isinstance(error, str) else f"unexpected {type(frame).__name__}"


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _spec(req: Mapping[str, Any], *, stream: bool, timeout_s: float) -> HttpSpec:
    fields = dict(req)
    if fields.get("service") is None and fields.get("url") is None:
        fields["service"] = "ollama"
    fields.setdefault("method", "POST" if "json" in fields or "body_b64" in fields else "GET")
    fields.setdefault("timeout_ms", min(MAX_TIMEOUT_MS, max(1, int(timeout_s * 1000))))
    return HttpSpec(stream=stream, **fields)
