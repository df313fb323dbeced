"""The peer client: call a relay over a `Transport`, on the fast path when the relay offers it.

`RelayClient(transport, relay_address)` sends `relay.http` and returns a whole `Response`
(`request()`) or a `RelayStream` (`stream()`, in `relay.client.stream`) that yields lines in
`seq` order. With `fast=None` (the default) the first stream asks `relay.info` whether the
relay offers the fast path (`mux/1`) and uses it if so; an old relay, or one that switched it
off, gets the seed API. On the fast path the client reads every `relay.mux` message once (by
its number), hands each item to its stream, and acknowledges: every `ack_delay_s`, and sooner
for a gap or a duplicate, so the relay resends what NKN lost. `stats` counts DMs both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from relay.client.mux import AckPolicy, ClientStats, MuxReceiver, to_frames
from relay.client.stream import Item, RelayStream, error_of
from relay.errors import ClientTimeout, FrameError, RemoteError
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
    Ping,
    Pong,
    Response,
    ResponseEnd,
    decode,
    encode,
)
from relay.muxframes import MUX_CAP, MuxKeepalive, MuxMessage
from relay.transport import Transport

log = logging.getLogger(__name__)
#: A cancelled fast-path stream resends `relay.cancel` this long at most, until its end comes.
CANCEL_PERSIST_S = 5.0
NEGOTIATE_TRIES = 3


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
        fast: bool | None = None,
        ack_delay_s: float = 0.25,
        resend_s: float = 1.0,
    ) -> None:
        """`idle_timeout_s` should exceed the relay's keepalive interval (10 s by default).

        `fast`: None uses the fast path when offered, True requires it, False never uses it.
        `resend_s`: on the fast path, resend an unanswered request (or cancel) this often.
        """
        self._transport = transport
        self.relay_address = relay_address
        self.timeout_s = timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.end_grace_s = end_grace_s
        self.resend_s = resend_s
        self._fast = fast
        self.fast_path: bool | None = None if fast is not False else False
        self.stats = ClientStats()
        self._waiters: dict[Id, asyncio.Queue[Item]] = {}
        self._kinds: dict[Id, type] = {}  # pings and infos waiting, by the reply they expect
        self._fast_ids: set[Id] = set()
        self._receiver = MuxReceiver()
        self._acks = AckPolicy(ack_delay_s)
        self._ack_wake = asyncio.Event()
        self._negotiating = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RelayClient:
        self._reader = asyncio.create_task(self._read())
        self._spawn(self._acker())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Send a last ack, stop reading replies (the transport stays the caller's to close)."""
        if self._acks.due_at is not None:
            with contextlib.suppress(Exception):
                await self._send_ack()
        tasks = [t for t in (self._reader, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._reader = None
        self._tasks.clear()

    async def negotiate(self) -> bool:
        """Whether streams use the fast path: asks `relay.info` once (`fast=None` or True).

        Raises `RemoteError` with `fast=True` when the relay does not offer it.
        """
        async with self._negotiating:
            if self.fast_path is None:
                try:
                    info = await self._info_retrying()
                except ClientTimeout:
                    if self._fast:
                        raise
                    # No relay.info answer at all: whatever the relay is, the seed API it has.
                    log.warning("relay %s did not answer relay.info", self.relay_address)
                    self.fast_path = False
                    return False
                self.fast_path = MUX_CAP in info.offers
            if self._fast and not self.fast_path:
                raise RemoteError("the relay does not offer the fast path (mux/1)")
            return self.fast_path

    async def _info_retrying(self) -> Info:
        # The fast path is for lossy links: one lost relay.info must not cost it.
        for attempt in range(NEGOTIATE_TRIES):
            try:
                return await self.info(timeout_s=min(3.0, self.timeout_s))
            except ClientTimeout:
                if attempt + 1 == NEGOTIATE_TRIES:
                    raise
        raise AssertionError("unreachable")

    async def ping(self, timeout_s: float = 10.0) -> tuple[Pong, float]:
        """Ping the relay; return its pong and the round trip in seconds."""
        rid = _new_id()
        with self._waiting(rid, Pong) as queue:
            started = time.perf_counter()
            await self._send(Ping(rid))
            frame, arrival, _ = await self._expect(queue, started + timeout_s)
        if not isinstance(frame, Pong):
            raise RemoteError(error_of(frame))
        return frame, arrival - started

    async def info(self, timeout_s: float = 10.0) -> Info:
        """Ask the relay for its services, TLS default, workers and body cap."""
        rid = _new_id()
        with self._waiting(rid, Info) as queue:
            await self._send(InfoRequest(rid))
            frame, _, _ = await self._expect(queue, time.perf_counter() + timeout_s)
        if not isinstance(frame, Info):
            raise RemoteError(error_of(frame))
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
            size = len(message.payload.encode("utf-8"))
            self.stats.dms_in += 1
            self.stats.bytes_in += size
            try:
                frame = decode(message.payload)
            except FrameError as exc:
                log.warning("malformed frame from relay: %s", exc.reason)
                continue
            if isinstance(frame, MuxMessage):
                self._on_mux(frame, arrival, size)
                continue
            if isinstance(frame, MuxKeepalive):
                self._on_mux_keepalive(frame, arrival)
                continue
            rid = getattr(frame, "id", None)
            if rid is None and isinstance(frame, Pong | Info):
                # The seed's relay answers without an id: give it to the oldest such waiter.
                rid = next((k for k, kind in self._kinds.items() if kind is type(frame)), None)
            queue = None if rid is None else self._waiters.get(rid)
            if queue is None:
                log.debug("frame for no waiting request: %s", type(frame).__name__)
                continue
            queue.put_nowait((frame, arrival, size))

    def _on_mux(self, message: MuxMessage, arrival: float, size: int) -> None:
        self.stats.mux_in += 1
        new = self._receiver.accept(message.epoch, message.n, message.lo)
        if not new:
            self.stats.mux_dup_in += 1
        self._acks.arrived(time.monotonic(), gap=self._receiver.has_gap, duplicate=not new)
        self._ack_wake.set()
        if not new:
            return
        charged: set[Id] = set()
        for item in message.items:
            queue = self._waiters.get(item.id)
            if queue is None:
                continue  # a stream the caller left, or a cancelled one already done
            # The DM's bytes count once per stream it carried (see `Arrival`).
            share = 0 if item.id in charged else size
            charged.add(item.id)
            queue.put_nowait((to_frames(item, message.ts), arrival, share))

    def _on_mux_keepalive(self, keepalive: MuxKeepalive, arrival: float) -> None:
        self._receiver.note_last(keepalive.epoch, keepalive.last, keepalive.lo)
        if self._receiver.has_gap:
            self._acks.arrived(time.monotonic(), gap=True, duplicate=False)
            self._ack_wake.set()
        for rid in self._fast_ids:
            queue = self._waiters.get(rid)
            if queue is not None:
                queue.put_nowait((Keepalive(rid, keepalive.ts), arrival, 0))

    async def _acker(self) -> None:
        """Send each ack when `AckPolicy` says it is due."""
        while True:
            due = self._acks.due_at
            if due is None:
                self._ack_wake.clear()
                await self._ack_wake.wait()
                continue
            wait = due - time.monotonic()
            if wait > 0:
                self._ack_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ack_wake.wait(), wait)
                continue
            try:
                await self._send_ack()
            except Exception:
                # Per-client boundary: a transport that failed or closed must not end the
                # client's reading; the relay resends what this ack would have confirmed.
                log.warning(
                    "could not send a fast-path ack to %s", self.relay_address, exc_info=True
                )

    async def _send_ack(self) -> None:
        ack = self._receiver.ack()
        self._acks.sent()
        if ack is None:
            return
        self.stats.acks_out += 1
        self.stats.resend_asks += len(ack.missing)
        await self._send(ack)

    def _cancel_until_end(self, rid: Id) -> None:
        """Resend `relay.cancel` for a fast-path stream until its end arrives (bounded)."""
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self._waiters[rid] = queue
        self._spawn(self._persist_cancel(rid, queue))

    async def _persist_cancel(self, rid: Id, queue: asyncio.Queue[Item]) -> None:
        deadline = time.perf_counter() + CANCEL_PERSIST_S
        try:
            while (left := deadline - time.perf_counter()) > 0:
                try:
                    frame, _, _ = await asyncio.wait_for(queue.get(), min(left, self.resend_s))
                except TimeoutError:
                    try:
                        await self._send(Cancel(rid))
                    except Exception:
                        # Background boundary: the transport is gone, so is the chance to cancel.
                        log.warning("could not resend relay.cancel for %r", rid, exc_info=True)
                        return
                    continue
                if isinstance(frame, ResponseEnd):
                    return
        finally:
            if self._waiters.get(rid) is queue:
                del self._waiters[rid]
            self._fast_ids.discard(rid)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.contextmanager
    def _waiting(self, rid: Id, reply: type | None = None) -> Any:
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self._waiters[rid] = queue
        if reply is not None:
            self._kinds[rid] = reply
        try:
            yield queue
        finally:
            self._waiters.pop(rid, None)
            self._kinds.pop(rid, None)

    async def _send(self, frame: Frame) -> None:
        payload = encode(frame)
        self.stats.dms_out += 1
        self.stats.bytes_out += len(payload.encode("utf-8"))
        await self._transport.send(self.relay_address, payload)

    async def _expect(self, queue: asyncio.Queue[Item], deadline: float) -> Item:
        try:
            return await asyncio.wait_for(queue.get(), max(0.0, deadline - time.perf_counter()))
        except TimeoutError:
            raise ClientTimeout("no answer from the relay in time") from None


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _spec(req: Mapping[str, Any], *, stream: bool, timeout_s: float) -> HttpSpec:
    fields = dict(req)
    if fields.get("service") is None and fields.get("url") is None:
        fields["service"] = "ollama"
    fields.setdefault("method", "POST" if "json" in fields or "body_b64" in fields else "GET")
    fields.setdefault("timeout_ms", min(MAX_TIMEOUT_MS, max(1, int(timeout_s * 1000))))
    return HttpSpec(stream=stream, **fields)
