"""Peer liveness from delivery ACKs: notice a peer that stopped acknowledging the relay's DMs.

The relay's DMs go out without asking for a reply (an ACK per DM costs both ends more than the
DM). But a peer that vanished (tab closed, NKN client gone, link stalled) would then go
unnoticed, and its request would keep an Ollama slot busy until the answer ends. So now and
then a DM asks for the ACK that nkn-sdk receivers send by themselves; stock peers have always
sent it (the seed's SDK never set `no_reply`).

NKN loses messages, ACKs included, so one missing ACK proves nothing: a peer counts as gone
when `PROBES` asks in a row went unanswered, each given `timeout_s / PROBES` and asked at least
that far apart, so a streaming peer that vanished is reported `timeout_s` after its first
unanswered ask. Any ACK, even a late one, and any DM from the peer (`heard`) prove it is there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from relay.transport import Acked

log = logging.getLogger(__name__)

#: Called with the peer's address and why it counts as gone.
OnSilent = Callable[[str, str], None]
#: Unanswered asks in a row that make a peer gone (at 5 % loss each way, one in ~1000).
PROBES = 3
#: Peers whose misses are remembered at most (the oldest is forgotten first).
MAX_PEERS = 65_536


@dataclass(slots=True)
class _Asks:
    """One peer's unanswered asks: their deadlines, the last one's time, misses in a row."""

    timers: dict[Acked, asyncio.TimerHandle] = field(default_factory=dict)
    last_at: float = 0.0
    misses: int = 0


class AckWatch:
    """Asks a peer for an ACK at most every `timeout_s / PROBES`; reports it once gone."""

    def __init__(self, timeout_s: float, on_silent: OnSilent) -> None:
        """Report a peer to `on_silent` after `PROBES` asks in a row went unanswered."""
        self._timeout_s = timeout_s
        self._wait_s = timeout_s / PROBES
        self._on_silent = on_silent
        self._peers: dict[str, _Asks] = {}

    def request(self, peer: str) -> Acked | None:
        """An ACK future to send with the next DM to `peer`, or None if one was asked lately."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        asks = self._peers.get(peer)
        if asks is None:
            if len(self._peers) >= MAX_PEERS:
                self.heard(next(iter(self._peers)))
            asks = self._peers[peer] = _Asks()
        if asks.timers and now - asks.last_at < self._wait_s:
            return None
        ack: Acked = loop.create_future()
        asks.timers[ack] = loop.call_later(self._wait_s, self._missed, peer, ack, None)
        asks.last_at = now
        ack.add_done_callback(lambda done: self._settled(peer, done))
        return ack

    def heard(self, peer: str) -> None:
        """A DM (or an ACK) came from `peer`: it is there, its misses start over."""
        asks = self._peers.pop(peer, None)
        if asks is not None:
            for timer in asks.timers.values():
                timer.cancel()

    def failed(self, peer: str, ack: Acked) -> None:
        """The DM carrying `ack` could not even be handed to the transport."""
        self.heard(peer)  # forget its asks: the report below is the one
        ack.cancel()
        self._on_silent(peer, "send failed")

    def close(self) -> None:
        """Stop every deadline (the relay is stopping)."""
        for asks in self._peers.values():
            for ack, timer in asks.timers.items():
                timer.cancel()
                ack.cancel()
        self._peers.clear()

    def _settled(self, peer: str, ack: Acked) -> None:
        if ack.cancelled():
            # The transport lost track of it (a restarted bridge): neither answer nor miss.
            self._drop(peer, ack)
        elif ack.result():
            self.heard(peer)
        else:
            self._missed(peer, ack, "not delivered")

    def _missed(self, peer: str, ack: Acked, reason: str | None) -> None:
        asks = self._drop(peer, ack)
        if asks is None:
            return  # answered, or counted, already
        asks.misses += 1
        log.debug("ask %d of %s unanswered (%s)", asks.misses, peer, reason or "late")
        if asks.misses >= PROBES:
            self.heard(peer)  # reported once; the next DM asks again
            self._on_silent(peer, reason or f"no ACK within {self._timeout_s:g} s")

    def _drop(self, peer: str, ack: Acked) -> _Asks | None:
        asks = self._peers.get(peer)
        timer = None if asks is None else asks.timers.pop(ack, None)
        if timer is None:
            return None
        timer.cancel()
        return asks
