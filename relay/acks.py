"""Peer liveness from delivery ACKs: notice a peer that stopped acknowledging the relay's DMs.

The relay's DMs go out without asking for a reply (an ACK per DM costs both ends more than the
DM). But a peer that vanished (tab closed, NKN client gone, link stalled) would then go
unnoticed, and its request would keep an Ollama slot busy until the answer ends. So now and
then a DM asks for the ACK that nkn-sdk receivers send by themselves; stock peers have always
sent it (the seed's SDK never set `no_reply`).

NKN loses messages, ACKs included, so one missing ACK proves nothing: a DM asks again every
`timeout_s / PROBES`, each ask waiting up to `timeout_s`, and a peer counts as gone when it
answered none of the (at least `PROBES`) asks made since its first unanswered one, `timeout_s`
ago. A streaming peer that vanished is so reported `timeout_s` after it went; a quiet link (a
keepalive every 10 s) takes until `PROBES` asks were made. Any ACK, even a late one, and any
DM from the peer (`heard`) prove it is there.
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
#: Asks a gone peer has left unanswered (all lost at 5 % loss each way: one in 10^5).
PROBES = 5
#: Peers whose asks are remembered at most (the oldest is forgotten first).
MAX_PEERS = 65_536


@dataclass(slots=True)
class _Asks:
    """One peer's last ask, and since its first unanswered one: how many, and the check."""

    last_at: float
    count: int = 0
    pending: set[Acked] = field(default_factory=set)
    check: asyncio.TimerHandle | None = None


class AckWatch:
    """Asks a peer for an ACK at most every `timeout_s / PROBES`; reports it once gone."""

    def __init__(self, timeout_s: float, on_silent: OnSilent) -> None:
        """Report a peer to `on_silent` when it answered none of `PROBES` asks over `timeout_s`."""
        self._timeout_s = timeout_s
        self._every_s = timeout_s / PROBES
        self._on_silent = on_silent
        self._peers: dict[str, _Asks] = {}

    def request(self, peer: str) -> Acked | None:
        """An ACK future to send with the next DM to `peer`, or None if one was asked lately."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        asks = self._peers.get(peer)
        if asks is None:
            if len(self._peers) >= MAX_PEERS:
                self._forget(next(iter(self._peers)))
            asks = self._peers[peer] = _Asks(now)
        elif now - asks.last_at < self._every_s:
            return None
        if asks.check is None:  # the first ask not answered yet: the clock starts
            asks.check = loop.call_later(self._timeout_s, self._check, peer)
        ack: Acked = loop.create_future()
        asks.pending.add(ack)
        asks.count += 1
        asks.last_at = now
        ack.add_done_callback(lambda done: self._settled(peer, done))
        return ack

    def heard(self, peer: str) -> None:
        """A DM (or an ACK) came from `peer`: it is there, its asks start over."""
        asks = self._peers.get(peer)
        if asks is not None and asks.check is not None:
            asks.check.cancel()
            asks.check = None
            asks.count = 0
            asks.pending.clear()

    def failed(self, peer: str, ack: Acked) -> None:
        """The DM carrying `ack` could not even be handed to the transport."""
        self._forget(peer)  # the report below is the one
        ack.cancel()
        self._on_silent(peer, "send failed")

    def close(self) -> None:
        """Stop every deadline (the relay is stopping)."""
        for asks in self._peers.values():
            if asks.check is not None:
                asks.check.cancel()
            for ack in asks.pending:
                ack.cancel()
        self._peers.clear()

    def _settled(self, peer: str, ack: Acked) -> None:
        asks = self._peers.get(peer)
        if asks is None or ack not in asks.pending:
            return  # its peer was heard from, or reported, meanwhile
        asks.pending.discard(ack)
        # Refused (the SDK gave up) or lost track of (a restarted bridge): no answer, no proof.
        if not ack.cancelled() and ack.result():
            self.heard(peer)

    def _check(self, peer: str) -> None:
        asks = self._peers.get(peer)
        if asks is None:
            return
        if asks.count < PROBES:
            # A quiet link: too few asks to tell loss from absence yet; look again later.
            asks.check = asyncio.get_running_loop().call_later(self._every_s, self._check, peer)
            return
        log.debug("%d asks of %s unanswered", asks.count, peer)
        self._forget(peer)  # reported once; the next DM asks again
        self._on_silent(peer, f"no ACK within {self._timeout_s:g} s")

    def _forget(self, peer: str) -> None:
        self.heard(peer)
        self._peers.pop(peer, None)
