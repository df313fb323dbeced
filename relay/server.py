"""The relay server: receives DMs from a `Transport`, dispatches them, and answers with frames.

`relay.ping` → `relay.pong`, `relay.info` → `relay.info`, `relay.http` → a `Session` (after the
peer and request policy), `relay.cancel` → the running session closes its upstream. At most
`RELAY_WORKERS` requests run at once; up to `RELAY_QUEUE` more wait; beyond that, or beyond a
peer's own limit, the answer is `busy` at once. Malformed DMs get an error reply when their id
can be read and are otherwise logged and dropped: one bad message never stops the relay.
Frames leave through the `Outlet` (back-pressure, ACK requests); a peer it reports silent has
every request of its own stopped, which closes their upstreams.

The fast path (`mux/1`, offered in `relay.info` unless `--no-fast-path`): a streamed
`relay.http` whose `caps` name it goes through the peer's `PeerMux` (`relay.mux`), refusals
included; a resent `relay.http` for an id the mux runs or ran lately is ignored. Without `caps`
a peer gets exactly the seed's frames.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx

from relay.errors import FrameError, PolicyError
from relay.frames import (
    REPLY_FRAMES,
    Cancel,
    Frame,
    HttpRequest,
    Id,
    Info,
    InfoRequest,
    Ping,
    Pong,
    decode,
)
from relay.mux import PeerMux
from relay.muxframes import MUX_CAP, MuxAck, MuxEnd
from relay.outlet import DmEvent, Observer, Outlet
from relay.policy import Policy
from relay.session import Session, refusal, refusal_for
from relay.settings import RelaySettings
from relay.transport import Incoming, Sending, Transport

__all__ = ["DmEvent", "Observer", "RelayServer", "serve_over"]

log = logging.getLogger(__name__)
#: Peers on the fast path at once, at most (each lingers a little after its last stream).
MAX_FAST_PEERS = 1024


class RelayServer:
    """Serves the relay DM API for one transport identity."""

    def __init__(
        self,
        config: RelaySettings,
        transport: Transport,
        *,
        clients: dict[bool, httpx.AsyncClient] | None = None,
        observer: Observer | None = None,
    ) -> None:
        """`clients` maps TLS verification (True/False) to an httpx client; made in `serve()`."""
        self._config = config
        self._transport = transport
        self._policy = Policy(config)
        self._clients = clients
        self._outlet = Outlet(config, transport, self._peer_silent, observer)
        self._slots = asyncio.Semaphore(config.workers)
        self._admitted = 0
        self._per_peer: Counter[str] = Counter()
        self._sessions: dict[tuple[str, Id], Session] = {}
        self._muxes: dict[str, PeerMux] = {}
        self.dms_received = 0

    @property
    def in_flight(self) -> int:
        """Requests running or queued right now."""
        return self._admitted

    @property
    def dms_sent(self) -> int:
        """DMs handed to the transport so far."""
        return self._outlet.dms_sent

    def unsent_b(self, peer: str | None = None) -> int:
        """Bytes of DMs to `peer` (None: to anyone) the transport has not sent yet."""
        return self._outlet.backlog.unsent_b(peer)

    async def serve(self) -> None:
        """Handle DMs until the transport stops delivering or this task is cancelled."""
        async with AsyncExitStack() as stack:
            if self._clients is None:
                # One pool per TLS mode: httpx fixes verification per client, not per request.
                self._clients = {
                    verify: await stack.enter_async_context(
                        httpx.AsyncClient(
                            verify=verify,
                            trust_env=False,
                            follow_redirects=False,
                            # httpx holds 100 connections by default: every admitted request
                            # (workers, not the queue) must get one, or streams past 100 stall.
                            limits=httpx.Limits(
                                max_connections=self._config.workers,
                                max_keepalive_connections=self._config.workers,
                            ),
                        )
                    )
                    for verify in (True, False)
                }
            stack.callback(self._outlet.close)
            async with asyncio.TaskGroup() as group:
                async for message in self._transport.incoming():
                    try:
                        self._dispatch(message, group)
                    except Exception:
                        # Per-message boundary: whatever one DM triggers, the relay carries on.
                        log.exception("DM from %s could not be handled", message.src)

    def _dispatch(self, message: Incoming, group: asyncio.TaskGroup) -> None:
        self.dms_received += 1
        self._outlet.observe("in", message.src, message.payload)
        try:
            frame = decode(message.payload)
        except FrameError as exc:
            if exc.request_id is None:
                log.warning("dropped malformed DM from %s: %s", message.src, exc.reason)
                return
            reply = refusal(exc.request_id, f"bad request: {exc.reason}", 400)
            group.create_task(self._send(message.src, reply))
            return
        if isinstance(frame, REPLY_FRAMES):
            # Never answer a reply: two relays talking to each other would loop forever.
            log.info("ignored %s from %s", type(frame).__name__, message.src)
            return
        try:
            self._policy.check_peer(message.src)
        except PolicyError as exc:
            rid = getattr(frame, "id", None)
            if isinstance(frame, HttpRequest):
                group.create_task(self._send(message.src, refusal_for(frame, exc)))
            else:
                group.create_task(self._send(message.src, refusal(rid, exc.error, exc.status)))
            return
        # A DM from the peer: it is there.
        self._outlet.acks.heard(message.src)
        if (mux := self._muxes.get(message.src)) is not None:
            mux.heard()
        if isinstance(frame, Ping):
            pong = Pong(int(time.time() * 1000), self._transport.address, frame.id)
            group.create_task(self._send(message.src, pong))
        elif isinstance(frame, InfoRequest):
            group.create_task(self._send(message.src, self._info(frame.id)))
        elif isinstance(frame, Cancel):
            self._cancel(message.src, frame.id)
        elif isinstance(frame, MuxAck):
            mux = self._muxes.get(message.src)
            if mux is not None:
                mux.on_ack(frame)
        elif isinstance(frame, HttpRequest):
            self._admit(message.src, frame, group)

    def _info(self, rid: Id | None) -> Info:
        cfg = self._config
        return Info(
            tuple(cfg.targets),
            cfg.verify_default,
            cfg.workers,
            cfg.max_body_b,
            rid,
            peer_limit=cfg.per_peer_limit,
            keepalive_ms=round(cfg.keepalive_s * 1000),
            offers=(MUX_CAP,) if cfg.fast_path else (),
        )

    def _cancel(self, src: str, rid: Id) -> None:
        session = self._sessions.get((src, rid))
        if session is None:
            log.info("cancel from %s for unknown request %r", src, rid)
            return
        session.cancel()

    def _peer_silent(self, peer: str, reason: str) -> None:
        """The outlet lost `peer`: stop its requests so their upstreams close at once."""
        sessions = [s for (src, _), s in self._sessions.items() if src == peer]
        if sessions:
            log.warning(
                "peer %s unreachable (%s): aborting %d request(s)", peer, reason, len(sessions)
            )
        for session in sessions:
            session.stop(f"peer unreachable: {reason}")
        mux = self._muxes.get(peer)
        if mux is not None:
            mux.close(farewell=True)

    def _admit(self, src: str, request: HttpRequest, group: asyncio.TaskGroup) -> None:
        key = (src, request.id)
        cfg = self._config
        mux = self._mux_for(src, group) if self._wants_mux(src, request) else None
        if mux is not None and (key in self._sessions or mux.seen(request.id)):
            # The peer resends a fast-path request until it hears of it: this one is here.
            log.debug("ignored a resent %r from %s", request.id, src)
            return
        if key in self._sessions:
            error = PolicyError("bad request: duplicate id", 400)
        elif self._admitted >= cfg.workers + cfg.queue:
            error = PolicyError("busy", 503)
        elif self._per_peer[src] >= cfg.per_peer_limit:
            error = PolicyError("busy", 503)
        else:
            try:
                target = self._policy.resolve(request.req, src)
            except PolicyError as exc:
                error = exc
            else:
                assert self._clients is not None  # set in serve() before any dispatch
                session = Session(
                    request,
                    target,
                    self._clients[target.verify],
                    self._outlet.link(src),
                    cfg,
                    mux,
                )
                if mux is not None:
                    mux.open_stream(request.id)
                self._sessions[key] = session
                self._admitted += 1
                self._per_peer[src] += 1
                group.create_task(self._run(src, session))
                return
        log.info("refused %r from %s: %s", request.id, src, error.error)
        if mux is not None:
            mux.open_stream(request.id, accepted=False)
            end = MuxEnd(request.id, False, 0, 0, 0, False, False, False, error.error, 0, False)
            mux.end(end)
            return
        group.create_task(self._send(src, refusal_for(request, error)))

    def _wants_mux(self, src: str, request: HttpRequest) -> bool:
        if not (self._config.fast_path and request.req.stream and MUX_CAP in request.caps):
            return False
        # Each fast-path peer costs a task and a window: past the cap, new ones get the seed API.
        return src in self._muxes or len(self._muxes) < MAX_FAST_PEERS

    def _mux_for(self, peer: str, group: asyncio.TaskGroup) -> PeerMux:
        """The peer's running mux, or a new one (with a new epoch) and its sending task."""
        mux = self._muxes.get(peer)
        if mux is None or mux.closed:
            mux = PeerMux(peer, self._outlet.link(peer), self._config, self._peer_silent)
            self._muxes[peer] = mux
            group.create_task(self._run_mux(mux))
        return mux

    async def _run_mux(self, mux: PeerMux) -> None:
        try:
            await mux.run()
        except Exception:
            # Per-peer boundary: its streams end as their peer vanished; the relay carries on.
            log.exception("fast path to %s failed", mux.peer)
            self._peer_silent(mux.peer, "fast path failed")
        finally:
            if self._muxes.get(mux.peer) is mux:
                del self._muxes[mux.peer]

    async def _run(self, src: str, session: Session) -> None:
        key = (src, session.request.id)
        try:
            if await self._acquire(session):
                try:
                    await session.run()
                finally:
                    self._slots.release()
            else:
                await session.run()  # cancelled while queued: it answers at once, opens nothing
        except Exception:
            # Per-request boundary: a bug in one session must not take the relay down.
            log.exception("request %r from %s failed", session.request.id, src)
            await self._send(src, refusal(session.request.id, "relay error", 500))
        finally:
            self._sessions.pop(key, None)
            self._admitted -= 1
            self._per_peer[src] -= 1
            if self._per_peer[src] <= 0:
                del self._per_peer[src]

    async def _acquire(self, session: Session) -> bool:
        """Wait for a worker slot; False if the peer cancelled the request first."""
        slot = asyncio.ensure_future(self._slots.acquire())
        cancelled = asyncio.ensure_future(session.cancelled.wait())
        try:
            await asyncio.wait({slot, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if not slot.done():
                slot.cancel()
        if slot.done() and not slot.cancelled():
            if session.cancelled.is_set():
                self._slots.release()
                return False
            return True
        return False

    async def _send(self, dest: str, frame: Frame) -> Sending | None:
        """Send a reply outside any session (pong, info, a refusal)."""
        return await self._outlet.reply(dest, frame)


async def serve_over(
    config: RelaySettings,
    transport: Transport,
    *,
    observer: Observer | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Start `transport`, report its address to `on_ready`, serve until cancelled, then close."""
    try:
        address = await transport.start()
        if on_ready is not None:
            on_ready(address)
        await RelayServer(config, transport, observer=observer).serve()
    finally:
        await transport.close()
