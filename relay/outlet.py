"""The outlet: the one way frames leave the relay, with back-pressure and peer liveness.

Every frame is encoded once here, counted in the `Backlog` until the transport has sent it, and
shown to the observer. Sessions send through a `PeerLink`: their content frames are *paced*
(each waits for room in the backlog, so a peer that does not keep up stops its upstream being
read) and their DMs carry the ACK requests of `AckWatch`, so a peer that stops acknowledging is
reported and its requests can be aborted. Replies outside a session (pong, info, refusals) are
never paced but are dropped when they do not fit in their peer's backlog: a peer that does not
read its answers cannot make the relay hold more of them. A frame sent `sure` (the seed path's
end summary, without which a peer cannot tell what it lost) asks for its own delivery ACK and
goes again, up to `SURE_TRIES` times in all, while that ACK does not come.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from relay.acks import PROBES, AckWatch, OnSilent
from relay.backlog import Backlog
from relay.frames import Frame, encode
from relay.settings import RelaySettings
from relay.transport import Acked, Sending, Transport

log = logging.getLogger(__name__)
#: A `sure` frame is sent at most this many times.
SURE_TRIES = 3


@dataclass(frozen=True, slots=True)
class DmEvent:
    """One DM seen by the relay, for observers such as the `--debug` view."""

    direction: str  # "in" or "out"
    peer: str
    payload: str
    monotonic_s: float


Observer = Callable[[DmEvent], None]


class Outlet:
    """Sends frames to peers over one transport; owns the backlog and the ACK watch."""

    def __init__(
        self,
        config: RelaySettings,
        transport: Transport,
        on_silent: OnSilent,
        observer: Observer | None = None,
    ) -> None:
        """`on_silent(peer, reason)` hears of peers that stopped acknowledging."""
        self._transport = transport
        self._observer = observer
        self.backlog = Backlog(config.peer_unsent_b, config.unsent_b)
        self.acks = AckWatch(config.ack_timeout_s, on_silent)
        self._sure_wait_s = config.ack_timeout_s / PROBES
        self._resending: set[asyncio.Task[None]] = set()
        self.dms_sent = 0

    def link(self, peer: str) -> PeerLink:
        """A sending link for one session with `peer`."""
        return PeerLink(self, peer)

    def observe(self, direction: str, peer: str, payload: str) -> None:
        """Show one DM to the observer, if any."""
        if self._observer is not None:
            self._observer(DmEvent(direction, peer, payload, time.monotonic()))

    async def reply(self, peer: str, frame: Frame) -> Sending | None:
        """Send a frame outside any session; dropped if it does not fit in `peer`'s backlog."""
        payload = encode(frame)
        size_b = len(payload.encode())
        if not self.backlog.has_room(peer, size_b):
            log.warning("dropped %s to %s: its DMs are not leaving", type(frame).__name__, peer)
            return None
        return await self._transmit(peer, frame, payload, size_b, acked=False)

    def close(self) -> None:
        """Stop the ACK deadlines and the resends (the relay is stopping)."""
        self.acks.close()
        for task in self._resending:
            task.cancel()

    async def _transmit(
        self, peer: str, frame: Frame, payload: str, size_b: int, *, acked: bool, sure: bool = False
    ) -> Sending | None:
        if sure:
            ack: Acked | None = asyncio.get_running_loop().create_future()
        else:
            ack = self.acks.request(peer) if acked else None
        try:
            sending = await self._put(peer, payload, size_b, ack)
        except Exception:
            # Per-message boundary: transports raise their own errors (bridge down, NKN
            # refusal). A session's peer then counts as unreachable; a reply is just lost.
            log.exception("could not send %s to %s", type(frame).__name__, peer)
            if ack is not None and not sure:
                self.acks.failed(peer, ack)
            return None
        if sure and ack is not None:
            task = asyncio.get_running_loop().create_task(self._resend_unacked(peer, payload, ack))
            self._resending.add(task)
            task.add_done_callback(self._resending.discard)
        return sending

    async def _put(self, peer: str, payload: str, size_b: int, ack: Acked | None) -> Sending | None:
        """Hand one DM to the transport (which may raise), counted and tracked."""
        self.observe("out", peer, payload)
        sending = await self._transport.send(peer, payload, ack=ack)
        self.dms_sent += 1
        self.backlog.track(peer, size_b, sending)
        return sending

    async def _resend_unacked(self, peer: str, payload: str, ack: Acked) -> None:
        """Send a `sure` frame again while its delivery ACK does not come (lost DM or ACK)."""
        size_b = len(payload.encode())
        for _ in range(SURE_TRIES - 1):
            try:
                async with asyncio.timeout(self._sure_wait_s):
                    if await asyncio.shield(ack):
                        self.acks.heard(peer)
                        return
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                if not ack.cancelled():
                    raise  # the relay is stopping
                return  # the transport lost track of it: no telling, no resend
            ack = asyncio.get_running_loop().create_future()
            try:
                await self._put(peer, payload, size_b, ack)
            except Exception:
                # Background boundary: the transport's failure was logged with the first try.
                return


class PeerLink:
    """How one session reaches its peer: paced sends that `stop()` interrupts."""

    def __init__(self, outlet: Outlet, peer: str) -> None:
        """Made by `Outlet.link`."""
        self._outlet = outlet
        self.peer = peer
        self._stopped = False
        self._waiting: asyncio.Future[None] | None = None

    @property
    def stopped(self) -> bool:
        """True once `stop()` was called: paced frames are dropped from then on."""
        return self._stopped

    async def send(
        self, frame: Frame, *, paced: bool = False, acked: bool = True, sure: bool = False
    ) -> Sending | None:
        """Send `frame`; with `paced`, first wait for room in the peer's backlog.

        `acked` lets the DM carry the peer's pending delivery-ACK request (`AckWatch`); the
        fast path's messages do not, the peer's own acks tell more. A `sure` frame goes again
        while its own delivery ACK does not come (`SURE_TRIES` in all).

        Returns the transport's `Sending` or None (the frame already left). A paced frame
        still waiting when the link stops is dropped: a cancelled future says so.
        """
        if paced and self._stopped:
            return _dropped()
        payload = encode(frame)
        size_b = len(payload.encode())
        if paced:
            backlog = self._outlet.backlog
            while not self._stopped and not backlog.has_room(self.peer, size_b):
                self._waiting = backlog.waiter()
                await self._waiting
            self._waiting = None
            if self._stopped:
                return _dropped()
        return await self._outlet._transmit(
            self.peer, frame, payload, size_b, acked=acked, sure=sure
        )

    def stop(self) -> None:
        """The session is ending: wake a paced send that waits, and drop it."""
        self._stopped = True
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)


def _dropped() -> Sending:
    future: Sending = asyncio.get_running_loop().create_future()
    future.cancel()
    return future
