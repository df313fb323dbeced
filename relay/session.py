"""A relay session: one `relay.http` request turned into DM frames for the peer.

Streaming requests get `relay.response.begin`, batched `relay.response.lines`, keepalives during
silences, and always one `relay.response.end` summary (also after errors, timeouts and
cancellation). Other requests get one `relay.response` with `json` or `body_b64`.

Batching adapts to the transport: while the session's last frame still waits in the transport,
due lines are held and coalesced (up to the batch caps) and go out as soon as it has left.

Back-pressure: content frames are paced by the peer's backlog (`relay.outlet.PeerLink`), and
the upstream body is read at most `READ_AHEAD_CHUNKS` chunks ahead of what the session has
framed. A peer that does not keep up therefore stops the upstream read; one that stops
acknowledging is `stop()`ped, which closes the upstream and frees its Ollama slot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import httpx

from relay.batcher import Batcher, LineSplitter
from relay.errors import PolicyError
from relay.frames import (
    Frame,
    HttpRequest,
    Keepalive,
    Response,
    ResponseBegin,
    ResponseEnd,
    encoded_size,
)
from relay.lineflags import LineFlags
from relay.mux import PeerMux
from relay.muxstream import run_mux_stream
from relay.policy import Target
from relay.settings import RelaySettings
from relay.transport import Sending
from relay.upstream import Body, Cancelled, Chunk, Eof, Event, Fail, Head, build_request, pump

log = logging.getLogger(__name__)

#: Upstream chunks read but not yet framed, at most: what a stalled peer leaves in memory here.
READ_AHEAD_CHUNKS = 2


class Link(Protocol):
    """How a session reaches its peer (`relay.outlet.PeerLink`)."""

    async def send(
        self, frame: Frame, *, paced: bool = False, sure: bool = False
    ) -> Sending | None:
        """Send a frame; `paced` ones wait for room and are dropped once the link stops;
        `sure` ones go again while their delivery ACK does not come.

        Returns the transport's `Sending`, None if the frame already left, or a cancelled
        future if it was dropped.
        """
        ...

    def stop(self) -> None:
        """Wake and drop a paced send that waits; later paced sends are dropped too."""
        ...


def now_ms() -> int:
    """Wall-clock milliseconds, used only as a label (`ts`) on frames."""
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Drained:
    """Session-internal event: the last frame handed to the transport has left it."""


SessionEvent: TypeAlias = Event | Drained


class Session:
    """Runs one relay.http request; `stop()` closes its upstream and ends it with an error."""

    def __init__(
        self,
        request: HttpRequest,
        target: Target,
        client: httpx.AsyncClient,
        link: Link,
        config: RelaySettings,
        mux: PeerMux | None = None,
    ) -> None:
        """Prepare the session; nothing happens until `run()`.

        With `mux` (the peer negotiated the fast path), a streamed answer goes through it.
        """
        self.request = request
        self._target = target
        self._client = client
        self._link = link
        self._config = config
        self._mux = mux
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._credit = asyncio.Semaphore(READ_AHEAD_CHUNKS)
        self._last_sent = time.monotonic()
        self._unsent: Sending | None = None  # the last frame, while it waits in the transport
        self.cancelled = asyncio.Event()
        self._stop_error: str | None = None

    def cancel(self) -> None:
        """Ask the session to stop (peer sent relay.cancel)."""
        self.stop("cancelled")

    def stop(self, error: str) -> None:
        """End the request with `error`: close its upstream, drop frames not sent yet."""
        if self._stop_error is not None:
            return
        self._stop_error = error
        self.cancelled.set()
        self._link.stop()
        self._events.put_nowait(Cancelled(error))

    async def run(self) -> None:
        """Perform the request and send every frame; returns after the last one was sent."""
        spec = self.request.req
        task: asyncio.Task[None] | None = None
        try:
            upstream = build_request(self._client, spec, self._target)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
            self._events.put_nowait(Fail(f"bad request: {exc}"[:200], 400))
        else:
            # Cancelled while queued for a worker: never open the upstream request at all.
            if not self.cancelled.is_set():
                task = asyncio.create_task(
                    pump(
                        self._client,
                        upstream,
                        self._events.put_nowait,
                        stream=spec.stream,
                        max_body_b=self._config.max_body_b,
                        gate=self._credit.acquire,
                    )
                )
        try:
            if spec.stream and self._mux is not None:
                await run_mux_stream(
                    self.request.id,
                    self._events,
                    self._credit,
                    self.cancelled,
                    self._mux,
                    self._config.max_line_b,
                )
            elif spec.stream:
                await self._run_stream()
            else:
                await self._run_once()
        finally:
            if task is not None:
                task.cancel()
                # wait() never raises the pump's own CancelledError, only ours.
                await asyncio.wait({task})

    async def _run_once(self) -> None:
        head: Head | None = None
        while True:
            event = await self._events.get()
            if isinstance(event, Head):
                head = event
            elif isinstance(event, Body) and head is not None:
                sending = await self._link.send(self._whole(head, event), paced=True)
                if sending is not None and sending.cancelled():
                    continue  # stopped while waiting for room: its Cancelled comes next
                return
            elif isinstance(event, Fail):
                await self._link.send(refusal(self.request.id, event.error, event.status))
                return
            elif isinstance(event, Cancelled):
                await self._link.send(refusal(self.request.id, event.error, 499))
                return

    def _whole(self, head: Head, body: Body) -> Response:
        ctype = head.headers.get("content-type", "").lower()
        data: object = None
        if "json" in ctype and "ndjson" not in ctype and not body.truncated:
            try:
                data = json.loads(body.data)
            except ValueError:
                data = None
        frame = Response(
            id=self.request.id,
            ok=head.status < 400,
            status=head.status,
            headers=head.headers,
            json=data,
            body_b64=None if data is not None else base64.b64encode(body.data).decode("ascii"),
            truncated=body.truncated,
            error=None,
        )
        if encoded_size(frame) <= self._config.max_dm_b:
            return frame
        # Re-encoded JSON or huge headers can outgrow the DM; fall back to a cut raw body.
        headers = {"content-type": ctype} if ctype else {}
        bare = Response(self.request.id, frame.ok, head.status, headers, None, "", True, None)
        room = max(0, (self._config.max_dm_b - encoded_size(bare)) * 3 // 4 - 4)
        cut = base64.b64encode(body.data[:room]).decode("ascii")
        return Response(self.request.id, frame.ok, head.status, headers, None, cut, True, None)

    async def _run_stream(self) -> None:
        cfg = self._config
        started = time.monotonic()
        batcher = Batcher(
            self.request.id,
            max_lines=cfg.batch_lines,
            max_delay_s=cfg.batch_ms / 1000,
            max_dm_b=cfg.max_dm_b,
        )
        splitter = LineSplitter(cfg.max_line_b)
        flags = LineFlags()
        received_b = 0
        ok = False
        error: str | None = None
        self._last_sent = started
        try:
            while True:
                event = await self._next_event(batcher)
                if event is None:
                    continue
                if isinstance(event, Drained):
                    # The link caught up: what was held past its deadline goes out now.
                    if batcher.due(time.monotonic()):
                        await self._emit_pending(batcher)
                    continue
                if isinstance(event, Head):
                    ok = event.status < 400
                    rid = self.request.id
                    await self._emit(ResponseBegin(rid, ok, event.status, event.headers, now_ms()))
                    continue
                if isinstance(event, Chunk):
                    received_b += len(event.data)
                    lines = splitter.feed(event.data)
                elif isinstance(event, Eof):
                    lines = splitter.finish()
                elif isinstance(event, Fail | Cancelled):
                    error = event.error
                    ok = False
                    break
                else:
                    continue  # a whole Body: only non-stream requests get one
                for line in lines:
                    if not line.truncated:
                        flags.inspect(line.text)
                    held = self._unsent is not None
                    now = time.monotonic()
                    for frame in batcher.add(line, ts_ms=now_ms(), now=now, hold=held):
                        await self._emit(frame)
                if isinstance(event, Eof):
                    break
                self._credit.release()  # framed: the pump may read one more chunk
        except asyncio.CancelledError:
            error, ok = "relay stopped", False
            self._link.stop()  # no waiting for room while the relay stops
            raise
        finally:
            pending = batcher.flush()
            if pending is not None:
                await self._emit(pending)
            end = ResponseEnd(
                id=self.request.id,
                ok=ok and error is None,
                bytes=received_b,
                last_seq=batcher.last_seq,
                lines=batcher.last_seq,
                eot_seen=flags.eot_seen,
                done_seen=flags.done_seen,
                truncated=batcher.truncated,
                error=error,
                t_ms=int((time.monotonic() - started) * 1000),
            )
            # Without its end a peer cannot tell what it lost: it goes again if not delivered.
            await self._emit(end, paced=False, sure=True)

    async def _next_event(self, batcher: Batcher) -> SessionEvent | None:
        """The next event, or None after sending a due batch or keepalive.

        While the last frame waits in the transport, a due batch waits for `Drained` instead.
        Once the session is stopped, that is all it hears.
        """
        if self._stop_error is not None:
            return Cancelled(self._stop_error)
        keepalive_at = self._last_sent + self._config.keepalive_s
        flush_at = None if self._unsent is not None else batcher.deadline
        wake = keepalive_at if flush_at is None else min(flush_at, keepalive_at)
        try:
            return await asyncio.wait_for(self._events.get(), max(0.0, wake - time.monotonic()))
        except TimeoutError:
            pass
        now = time.monotonic()
        if flush_at is not None and batcher.due(now):
            await self._emit_pending(batcher)
        elif now >= keepalive_at:
            if self._unsent is None:
                await self._emit(Keepalive(self.request.id, now_ms()), paced=False)
            else:
                # A keepalive queued behind a frame that has not left tells the peer nothing.
                self._last_sent = now
        return None

    async def _emit_pending(self, batcher: Batcher) -> None:
        frame = batcher.flush()
        if frame is not None:
            await self._emit(frame)

    async def _emit(self, frame: Frame, *, paced: bool = True, sure: bool = False) -> None:
        """Send a frame; content frames (`paced`) first wait for room in the peer's backlog."""
        sending = await self._link.send(frame, paced=paced, sure=sure)
        self._last_sent = time.monotonic()
        if sending is None or sending.done():
            self._unsent = None
            return
        self._unsent = sending
        sending.add_done_callback(self._on_sent)

    def _on_sent(self, sending: Sending) -> None:
        # Only the newest frame counts: an older one leaving says nothing about the backlog.
        if sending is self._unsent:
            self._unsent = None
            self._events.put_nowait(Drained())


def refusal(request_id: str | int | None, error: str, status: int) -> Response:
    """A `relay.response` with `ok:false`: how the relay refuses or fails a request."""
    return Response(request_id, False, status, {}, None, None, False, error)


def refused_stream(request_id: str | int, error: str) -> ResponseEnd:
    """How a streaming request refused before it started ends: an `ok:false` end summary."""
    return ResponseEnd(request_id, False, 0, 0, 0, False, False, False, error, 0)


def refusal_for(request: HttpRequest, error: PolicyError) -> Frame:
    """The frame refusing `request`: an end summary if it asked to stream, else a response."""
    if request.req.stream:
        return refused_stream(request.id, error.error)
    return refusal(request.id, error.error, error.status)
