"""The local node's state: which sockets hold which address, held messages and counters."""

from __future__ import annotations

import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from aiohttp import web

from relay.localnode.injector import FaultInjector
from relay.localnode.settings import LocalNodeSettings


@dataclass
class Held:
    """A message kept for an offline address until `expires` (monotonic seconds)."""

    expires: float
    src: str
    payload: bytes


@dataclass
class NodeState:
    """Who is connected and what was routed; lives on the app, never at module level."""

    config: LocalNodeSettings
    pubkey: str = field(default_factory=lambda: os.urandom(32).hex())
    node_id: str = field(default_factory=lambda: os.urandom(32).hex())
    clients: dict[str, set[web.WebSocketResponse]] = field(default_factory=lambda: defaultdict(set))
    held: dict[str, deque[Held]] = field(default_factory=lambda: defaultdict(deque))
    delivered: int = 0
    dropped: int = 0
    #: Counts every routed message per direction and applies the `--fault-*` settings.
    injector: FaultInjector = field(init=False)

    def __post_init__(self) -> None:
        self.injector = FaultInjector.of(self.config)

    def node_info(self, host: str) -> dict[str, str]:
        """The `getwsaddr` result; `addr` is where the client reached us (so TLS names match)."""
        # rpcAddr "" keeps the SDK from a second `getnodestate` round trip.
        return {"addr": host, "rpcAddr": "", "pubkey": self.pubkey, "id": self.node_id, "sdp": ""}

    def purge_expired(self) -> None:
        """Forget held messages whose holding time has passed."""
        now = time.monotonic()
        for dest in list(self.held):
            kept = deque(item for item in self.held[dest] if item.expires > now)
            if kept:
                self.held[dest] = kept
            else:
                del self.held[dest]

    def held_count(self) -> int:
        """Messages waiting for an offline address."""
        return sum(len(q) for q in self.held.values())

    def snapshot(self) -> dict[str, object]:
        """JSON for `GET /_localnode/state` (tests wait on it)."""
        return {
            "local_test_network": True,
            "clients": sorted(a for a, s in self.clients.items() if s),
            "held": self.held_count(),
            "delivered": self.delivered,
            "dropped": self.dropped,
            **self.injector.snapshot(),
        }


STATE = web.AppKey("state", NodeState)
