"""Peer liveness from delivery ACKs: notice a peer that stopped acknowledging the relay's DMs.

The relay's DMs go out without asking for a reply (an ACK per DM costs both ends more than the
DM). But a peer that vanished (tab closed, NKN client gone, link stalled) would then go
unnoticed, and its request would keep an Ollama slot busy until the answer ends. So one DM per
peer at a time asks for the ACK that nkn-sdk receivers send by themselves; stock peers have
always sent it (the seed's SDK never set `no_reply`). When that ACK has not come within
`timeout_s`, or the network says it never will, the peer is reported silent once, and a new
ACK is asked for with its next DM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from relay.transport import Acked

log = logging.getLogger(__name__)

#: Called with the peer's address and why it counts as gone.
OnSilent = Callable[[str, str], None]


@dataclass(slots=True)
class _Wanted:
    ack: Acked
    timer: asyncio.TimerHandle


class AckWatch:
    """Keeps at most one ACK request in flight per peer, each with a deadline."""

    def __init__(self, timeout_s: float, on_silent: OnSilent) -> None:
        """Report a peer to `on_silent` when an ACK is not back within `timeout_s`."""
        self._timeout_s = timeout_s
        self._on_silent = on_silent
        self._wanted: dict[str, _Wanted] = {}

    def request(self, peer: str) -> Acked | None:
        """An ACK future to send with the next DM to `peer`, or None if one is already out."""
        if peer in self._wanted:
            return None
        loop = asyncio.get_running_loop()
        ack: Acked = loop.create_future()
        timer = loop.call_later(self._timeout_s, self._expired, peer, ack)
        self._wanted[peer] = _Wanted(ack, timer)
        ack.add_done_callback(lambda done: self._settled(peer, done))
        return ack

    def failed(self, peer: str, ack: Acked) -> None:
        """The DM carrying `ack` could not even be handed to the transport."""
        self._forget(peer, ack)
        ack.cancel()
        self._on_silent(peer, "send failed")

    def close(self) -> None:
        """Stop every deadline (the relay is stopping)."""
        for wanted in self._wanted.values():
            wanted.timer.cancel()
            wanted.ack.cancel()
        self._wanted.clear()

    def _settled(self, peer: str, ack: Acked) -> None:
        if not self._forget(peer, ack) or ack.cancelled():
            return  # acknowledged late, or lost track of: the next DM asks again
        if not ack.result():
            self._on_silent(peer, "not delivered")

    def _expired(self, peer: str, ack: Acked) -> None:
        if self._forget(peer, ack):
            log.debug("no ACK from %s within %.1f s", peer, self._timeout_s)
            self._on_silent(peer, f"no ACK within {self._timeout_s:g} s")

    def _forget(self, peer: str, ack: Acked) -> bool:
        wanted = self._wanted.get(peer)
        if wanted is None or wanted.ack is not ack:
            return False
        del self._wanted[peer]
        wanted.timer.cancel()
        return True
