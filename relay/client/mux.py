"""The fast path's peer side: which `relay.mux` messages arrived, what to ask again, counters.

`MuxReceiver` drops duplicate messages by their number, and knows the cumulative `upto` and
the `missing` numbers an ack reports (a keepalive's `last` reveals a lost last message).
`AckPolicy` says when the next ack is due: `ack_delay_s` after the first message not yet
acknowledged, sooner after a gap (past a short grace, as NKN may just reorder) or a duplicate
(the relay resent: our last ack may have been lost). `to_frames` turns a message's items into
the seed's frame types, so a stream reads both paths alike. All pure: the caller passes the
clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.frames import Frame, Keepalive, LineEntry, ResponseBegin, ResponseEnd, ResponseLines
from relay.muxframes import MAX_MISSING, MuxAccepted, MuxAck, MuxBegin, MuxEnd, MuxItem, MuxLines

#: A gap may be reordering; ask for the missing message after this long.
GAP_GRACE_S = 0.03


@dataclass(slots=True)
class ClientStats:
    """DMs and bytes a client saw, both paths (the bench's messages-per-line figures)."""

    dms_in: int = 0
    bytes_in: int = 0
    dms_out: int = 0
    bytes_out: int = 0
    mux_in: int = 0
    mux_dup_in: int = 0
    acks_out: int = 0
    resend_asks: int = 0
    requests_resent: int = 0


@dataclass(frozen=True, slots=True)
class FastEnd(ResponseEnd):
    """A fast-path end summary; `begun` says a `begin` was sent (wait for it if lost)."""

    begun: bool = False


class MuxReceiver:
    """Message numbers received from one relay epoch."""

    def __init__(self) -> None:
        """Empty until the first message names its epoch."""
        self.epoch: str | None = None
        self.upto = 0
        self._above: set[int] = set()
        self._known = 0

    def accept(self, epoch: str, n: int, lo: int = 0) -> bool:
        """Record message `n`; False if it is a duplicate. A new epoch starts over; `lo`: the
        relay keeps nothing below it (a client new to the epoch has nothing to ask there)."""
        self._epoch(epoch)
        self._skip(lo)
        if n <= self.upto or n in self._above:
            return False
        self._above.add(n)
        self._known = max(self._known, n)
        self._advance()
        return True

    def note_last(self, epoch: str, last: int, lo: int = 0) -> None:
        """A keepalive says messages up to `last` were sent, and none below `lo` is kept."""
        self._epoch(epoch)
        self._skip(lo)
        self._known = max(self._known, last)

    def _skip(self, lo: int) -> None:
        if lo - 1 > self.upto:
            self.upto = lo - 1
            self._above = {n for n in self._above if n > self.upto}
            self._known = max(self._known, self.upto)
            self._advance()

    def _advance(self) -> None:
        while self.upto + 1 in self._above:
            self.upto += 1
            self._above.discard(self.upto)

    def missing(self) -> tuple[int, ...]:
        """Numbers known to be sent but not received (the first `MAX_MISSING`)."""
        gaps = (n for n in range(self.upto + 1, self._known + 1) if n not in self._above)
        out: list[int] = []
        for n in gaps:
            out.append(n)
            if len(out) == MAX_MISSING:
                break
        return tuple(out)

    @property
    def has_gap(self) -> bool:
        """Whether some sent message has not arrived."""
        return self._known > self.upto

    def ack(self) -> MuxAck | None:
        """The ack to send now, or None before any message."""
        if self.epoch is None:
            return None
        return MuxAck(self.epoch, self.upto, self.missing())

    def _epoch(self, epoch: str) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.upto = self._known = 0
            self._above.clear()


class AckPolicy:
    """When the next ack is due (monotonic seconds), from what arrived since the last one."""

    def __init__(self, ack_delay_s: float) -> None:
        """Acknowledge at most `ack_delay_s` after a message arrived."""
        self._delay_s = ack_delay_s
        self.due_at: float | None = None

    def arrived(self, now: float, *, gap: bool, duplicate: bool) -> None:
        """A message (or keepalive) arrived at `now`."""
        at = now + (0.0 if duplicate else GAP_GRACE_S if gap else self._delay_s)
        self.due_at = at if self.due_at is None else min(self.due_at, at)

    def sent(self) -> None:
        """The ack went out."""
        self.due_at = None


def to_frames(item: MuxItem, ts: int) -> Frame:
    """One item as the seed frame a stream already understands (`ts`: the message's)."""
    match item:
        case MuxAccepted(id=rid):
            return Keepalive(rid, ts)  # the relay has it: liveness, and no more resends
        case MuxBegin(id=rid, ok=ok, status=status, headers=headers):
            return ResponseBegin(rid, ok, status, headers, ts)
        case MuxLines(id=rid, seq=seq, lines=lines, cut=cut):
            cuts = set(cut)
            entries = tuple(
                LineEntry(seq + i, ts, text, seq + i in cuts) for i, text in enumerate(lines)
            )
            return ResponseLines(rid, entries)
        case MuxEnd():
            return FastEnd(
                item.id,
                item.ok,
                item.bytes,
                item.last_seq,
                item.lines,
                item.eot_seen,
                item.done_seen,
                item.truncated,
                item.error,
                item.t_ms,
                item.begun,
            )
    raise TypeError(f"not a fast-path item: {type(item).__name__}")
