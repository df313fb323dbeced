"""The fast path's relay side: a `PeerMux` shares messages among all streams of one peer.

Items of the peer's streams wait in one pending list (`relay.muxpack`) and leave
together as one `relay.mux` message when the per-peer window closes (`mux_window_ms`), at once
for a stream's first line (so batching adds nothing to the time to first token), or when a
message is full. Every message is numbered and kept until the peer acknowledges it: numbers the
peer lists as `missing` are resent at once, and the oldest unacknowledged message again after
the RTO (a lost last message leaves no gap to report), backing off.

The kept messages are the send window: while they and the pending items hold `mux_window_b`
bytes, streams wait before adding lines, so a peer that does not keep up (or vanished) stops its
upstreams being read, and the buffer stays bounded without ever dropping what a resend needs.
Messages leave through the peer's `PeerLink` (backlog pacing and keepalives with the delivery-ACK
watch); a peer that, while messages wait for its ack, sent nothing for `ack_timeout_s` (at
least four RTOs) is gone, and its requests are stopped, which frees their Ollama slots. Each
message and keepalive says the oldest number still kept (`lo`): a new client of the same peer
address (the last one left without acknowledging everything) starts from there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from relay.batcher import RawLine
from relay.frames import Frame
from relay.muxframes import (
    MuxAccepted,
    MuxAck,
    MuxBegin,
    MuxEnd,
    MuxId,
    MuxItem,
    MuxKeepalive,
    MuxMessage,
    message_overhead,
)
from relay.muxpack import Pending
from relay.settings import RelaySettings
from relay.transport import Sending

log = logging.getLogger(__name__)

#: One fast-path message carries at most this much: a lost one is resent whole.
MUX_DM_B = 262_144
#: A finished (or refused) request id is remembered this long, to ignore the peer's resends.
LINGER_S = 30.0
RECENT_IDS = 4096
#: Resends back off up to this interval.
MAX_RTO_S = 8.0


class MuxLink(Protocol):
    """What a `PeerMux` sends through (`relay.outlet.PeerLink`)."""

    async def send(
        self, frame: Frame, *, paced: bool = False, acked: bool = True
    ) -> Sending | None:
        """Send one frame (`acked`: asking for the delivery ACK); cancelled future: dropped."""
        ...

    def stop(self) -> None:
        """Drop paced sends from now on."""
        ...


@dataclass(slots=True)
class _Kept:
    """A message sent and not yet acknowledged."""

    message: MuxMessage
    size_b: int
    last_sent: float
    tries: int = 1


def now_ms() -> int:
    """Wall-clock milliseconds, a label only."""
    return int(time.time() * 1000)


class PeerMux:
    """One fast-path peer: pending items, its flush window, numbering and the replay buffer."""

    def __init__(
        self,
        peer: str,
        link: MuxLink,
        config: RelaySettings,
        on_gone: Callable[[str, str], None],
    ) -> None:
        """`on_gone(peer, reason)` hears when the peer stopped acknowledging."""
        self.peer = peer
        self.epoch = os.urandom(4).hex()
        self._link = link
        self._on_gone = on_gone
        self._window_s = config.mux_window_ms / 1000
        self._cap_b = config.mux_window_b
        self._rto_s = config.mux_rto_ms / 1000
        self._keepalive_s = config.keepalive_s
        # A peer acknowledges within its ack delay; a few RTOs cover resends under heavy loss.
        self._gone_s = max(config.ack_timeout_s, 4 * self._rto_s)
        self._max_b = min(config.max_dm_b, MUX_DM_B)
        self._next_n = 1
        self._pending = Pending(self._max_b)
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._kept_b = 0
        self._asked: set[int] = set()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._last_sent = self._idle_since = self._alive_at = time.monotonic()
        self._streams: set[MuxId] = set()
        self._recent: OrderedDict[MuxId, float] = OrderedDict()
        self.closed = False
        self._farewell = False
        self._farewells: set[asyncio.Task[Sending | None]] = set()
        self.messages_sent = 0
        self.resent = 0

    # --- what sessions and the server call -----------------------------------------------------

    def seen(self, rid: MuxId) -> bool:
        """Whether `rid` runs or ran lately here (a resent `relay.http` is then ignored)."""
        return rid in self._streams or rid in self._recent

    def open_stream(self, rid: MuxId, *, accepted: bool = True) -> None:
        """A fast-path request of this peer arrived; `accepted`: tell the peer it is here."""
        self._streams.add(rid)
        self._remember(rid)
        if accepted:
            self._add(MuxAccepted(rid), urgent=False)

    def begin(self, rid: MuxId, ok: bool, status: int, headers: dict[str, str]) -> None:
        """The stream's upstream answered."""
        self._add(MuxBegin(rid, ok, status, dict(headers)), urgent=False)

    async def lines(
        self, rid: MuxId, seq: int, lines: Sequence[RawLine], stopped: asyncio.Event
    ) -> bool:
        """Queue lines numbered from `seq`, after waiting for room; False if `stopped` first."""
        while not self._room.is_set() and not stopped.is_set() and not self.closed:
            room = asyncio.ensure_future(self._room.wait())
            stop = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait({room, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                room.cancel()
                stop.cancel()
        if stopped.is_set() or self.closed:
            return False
        for item in self._pending.line_items(rid, seq, lines):
            self._add(item, urgent=item.seq == 1)
        return True

    def end(self, end: MuxEnd) -> None:
        """The stream is over: queue its summary (never waits)."""
        self._streams.discard(end.id)
        self._remember(end.id)
        if self.closed and self._farewell:
            self._last_word(end)
        self._add(end, urgent=False)

    def heard(self) -> None:
        """A DM came from the peer (a request, a cancel): it is there, if not yet up to date."""
        self._alive_at = time.monotonic()

    def on_ack(self, ack: MuxAck) -> None:
        """The peer's acknowledgement: forget what it has, resend what it lists as missing."""
        if ack.epoch != self.epoch:
            return  # for an earlier relay run (or an earlier mux of this peer)
        self._alive_at = time.monotonic()
        while self._kept:
            n, kept = next(iter(self._kept.items()))
            if n > ack.upto:
                break
            self._kept.popitem(last=False)
            self._kept_b -= kept.size_b
        for n in ack.missing:
            if n in self._kept:
                self._asked.add(n)
        self._check_room()
        self._wake.set()

    def close(self, *, farewell: bool = False) -> None:
        """Stop: drop what waits, wake streams waiting for room (the peer is gone).

        With `farewell`, the end summaries of the streams still running go out once each, as
        the seed path sends its end frames to a peer it gave up on (it may yet read them).
        """
        self._farewell = self._farewell or (farewell and not self.closed)
        self.closed = True
        self._pending.clear()
        self._link.stop()
        self._room.set()
        self._wake.set()

    # --- the sending loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Send, resend and keep alive until closed, or idle past the linger time."""
        try:
            while not self.closed:
                await self._wait()
                if self.closed:
                    return
                now = time.monotonic()
                if self._asked:
                    await self._resend_asked(now)
                elif self._flush_at(now) <= now:
                    await self._send_new()
                elif self._rto_at() <= now:
                    await self._retransmit(now)
                elif self._keepalive_at() <= now:
                    await self._keepalive()
                if self._kept and now - self._alive_at > self._gone_s:
                    self._on_gone(self.peer, f"no fast-path ack within {self._gone_s:g} s")
                    self.close(farewell=True)
                    return
                if self._busy():
                    self._idle_since = now
                elif now - self._idle_since > LINGER_S:
                    return
        finally:
            self.close()

    async def _wait(self) -> None:
        now = time.monotonic()
        wake = min(self._flush_at(now), self._rto_at(), self._keepalive_at())
        if not self._busy():
            wake = min(wake, self._idle_since + LINGER_S + 0.01)
        if self._asked or wake <= now:
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), wake - now)
        except TimeoutError:
            pass

    def _busy(self) -> bool:
        return bool(self._streams or self._pending or self._kept)

    def _flush_at(self, now: float) -> float:
        pending = self._pending
        if not pending or pending.first_at is None:
            return float("inf")
        if pending.urgent or pending.full:
            return now
        return pending.first_at + self._window_s

    def _rto_at(self) -> float:
        if not self._kept:
            return float("inf")
        kept = next(iter(self._kept.values()))
        return kept.last_sent + min(MAX_RTO_S, self._rto_s * 2.0 ** (kept.tries - 1))

    def _keepalive_at(self) -> float:
        return self._last_sent + self._keepalive_s if self._streams else float("inf")

    async def _send_new(self) -> None:
        n = self._next_n
        self._next_n += 1
        ts = now_ms()
        now = time.monotonic()
        if not self._kept:
            self._alive_at = max(self._alive_at, now)  # the peer's time to answer starts now
        lo = next(iter(self._kept), n)
        room = self._max_b - message_overhead(self.epoch, n, ts, lo)
        taken, used = self._pending.take(room, now)
        message = MuxMessage(self.epoch, n, ts, taken, lo)
        self._kept[n] = _Kept(message, used, now)
        self._kept_b += used
        self._check_room()
        await self._transmit(message)

    async def _resend_asked(self, now: float) -> None:
        asked, self._asked = sorted(self._asked), set()
        for n in asked:
            kept = self._kept.get(n)
            # A message sent moments ago may simply still be on its way (reordering).
            if kept is not None and now - kept.last_sent >= min(self._rto_s / 4, 0.1):
                await self._again(kept, now)

    async def _retransmit(self, now: float) -> None:
        await self._again(next(iter(self._kept.values())), now)

    async def _again(self, kept: _Kept, now: float) -> None:
        kept.tries += 1
        kept.last_sent = now
        self.resent += 1
        await self._transmit(kept.message)

    async def _keepalive(self) -> None:
        # Nothing to acknowledge in a silence: the network's delivery ACK tells if it is gone.
        lo = next(iter(self._kept), self._next_n)
        keepalive = MuxKeepalive(self.epoch, self._next_n - 1, now_ms(), lo)
        await self._transmit(keepalive, acked=True)

    async def _transmit(self, frame: MuxMessage | MuxKeepalive, *, acked: bool = False) -> None:
        self._last_sent = time.monotonic()
        # Messages ask no delivery ACK: the peer's own acks say more, and cost no extra DM.
        sending = await self._link.send(frame, paced=True, acked=acked)
        self.messages_sent += 1
        if sending is not None and sending.cancelled():
            self.close()  # the link was stopped: the peer is gone

    # --- helpers ---------------------------------------------------------------------------------

    def _add(self, item: MuxItem, *, urgent: bool) -> None:
        if self.closed:
            return
        self._pending.add(item, urgent=urgent, now=time.monotonic())
        self._check_room()
        self._wake.set()

    def _last_word(self, end: MuxEnd) -> None:
        message = MuxMessage(self.epoch, self._next_n, now_ms(), (end,), self._next_n)
        self._next_n += 1
        task = asyncio.get_running_loop().create_task(
            self._link.send(message, paced=False, acked=False)
        )
        self._farewells.add(task)
        task.add_done_callback(self._farewells.discard)

    def _check_room(self) -> None:
        if self.closed or self._kept_b + self._pending.size_b < self._cap_b:
            self._room.set()
        else:
            self._room.clear()

    def _remember(self, rid: MuxId) -> None:
        now = time.monotonic()
        self._recent[rid] = now
        self._recent.move_to_end(rid)
        while self._recent and (
            len(self._recent) > RECENT_IDS or next(iter(self._recent.values())) < now - LINGER_S
        ):
            self._recent.popitem(last=False)
