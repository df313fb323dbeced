"""The backlog: bytes of DMs the transport accepted but has not sent yet, per peer and in all.

This is what a slow or stalled NKN link makes the relay hold. Every DM the relay hands to its
transport is counted here until its `Sending` future completes. A session that wants to send
another frame first waits for room: until its peer is under `peer_cap_b` and the relay as a
whole under `total_cap_b` with that frame added. While it waits it reads nothing more from its
upstream, so back-pressure reaches the proxy and Ollama through TCP, and what the relay holds
stays bounded whatever the peer does. A peer with nothing unsent always has room for one frame,
so no frame is ever too big to go.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from relay.transport import Sending


class Backlog:
    """Counts unsent bytes per peer; `has_room` and `wait` let senders keep under the caps."""

    def __init__(self, peer_cap_b: int, total_cap_b: int) -> None:
        """Caps in bytes: one peer's unsent DMs, and every peer's together."""
        self.peer_cap_b = peer_cap_b
        self.total_cap_b = total_cap_b
        self._per_peer: Counter[str] = Counter()
        self._total_b = 0
        self._waiters: list[asyncio.Future[None]] = []

    def unsent_b(self, peer: str | None = None) -> int:
        """Bytes not yet sent to `peer`, or to anyone when `peer` is None."""
        return self._total_b if peer is None else self._per_peer[peer]

    def has_room(self, peer: str, size_b: int) -> bool:
        """Whether a DM of `size_b` bytes to `peer` keeps both counts within their caps."""
        mine = self._per_peer[peer]
        peer_ok = mine == 0 or mine + size_b <= self.peer_cap_b
        total_ok = self._total_b == 0 or self._total_b + size_b <= self.total_cap_b
        return peer_ok and total_ok

    def track(self, peer: str, size_b: int, sending: Sending | None) -> None:
        """Count a DM just handed to the transport until `sending` completes (None: it left)."""
        if sending is None or sending.done():
            return
        self._per_peer[peer] += size_b
        self._total_b += size_b
        sending.add_done_callback(lambda _: self._sent(peer, size_b))

    def waiter(self) -> asyncio.Future[None]:
        """A future that completes at the next DM that leaves: then check `has_room` again."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def _sent(self, peer: str, size_b: int) -> None:
        self._per_peer[peer] -= size_b
        if self._per_peer[peer] <= 0:
            del self._per_peer[peer]
        self._total_b -= size_b
        # Wake everyone: each waiter checks its own peer; there are at most `workers` of them.
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)
