"""An in-memory NKN network for tests: `MemoryNetwork` hands out connected `Transport`s.

Messages go straight into the destination's queue, in order, unless a test installs a
`deliver` hook that may hold, reorder, duplicate or drop them (NKN with several sub-clients
may deliver out of order). Every sent DM is logged so tests can count DMs and bytes.
`hold(address)` stalls one sender's link, like a saturated NKN bridge: its DMs are logged as
sent but neither delivered nor confirmed (their `Sending` futures stay pending) until
`release(address)`. A DM sent with `ack` is acknowledged when it reaches an inbox, as an
nkn-sdk receiver would; one for an address that left (a vanished peer) never is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from relay.transport import Acked, Incoming, Sending

log = logging.getLogger(__name__)

#: Decides what arrives now for one sent DM: return the payloads to deliver (possibly none).
DeliverHook = Callable[[str, str, str], Iterable[str]]


@dataclass(frozen=True, slots=True)
class SentDm:
    """One DM as it was sent through the memory network."""

    src: str
    dest: str
    payload: str


@dataclass
class MemoryNetwork:
    """A set of in-memory transports that can message each other by address."""

    deliver: DeliverHook | None = None
    sent: list[SentDm] = field(default_factory=list)
    _inboxes: dict[str, asyncio.Queue[Incoming | None]] = field(default_factory=dict)
    _held: dict[str, list[tuple[str, str, Sending, Acked | None]]] = field(default_factory=dict)

    def transport(self, name: str) -> MemoryTransport:
        """A transport whose address is `name.<64 hex>` (derived from the name)."""
        pubkey = hashlib.sha256(name.encode()).hexdigest()
        return MemoryTransport(self, f"{name}.{pubkey}")

    def _register(self, address: str) -> asyncio.Queue[Incoming | None]:
        inbox: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._inboxes[address] = inbox
        return inbox

    def _unregister(self, address: str) -> None:
        inbox = self._inboxes.pop(address, None)
        if inbox is not None:
            inbox.put_nowait(None)

    def hold(self, src: str) -> None:
        """Stall `src`'s outgoing link until `release(src)`."""
        self._held.setdefault(src, [])

    def release(self, src: str) -> None:
        """Deliver what `src` sent while held, in order, and confirm it; unstall the link."""
        for dest, payload, sending, ack in self._held.pop(src, []):
            self._deliver(src, dest, payload, ack)
            sending.set_result(None)

    def held_b(self, src: str) -> int:
        """Bytes (UTF-8) of the DMs `src`'s stalled link holds right now."""
        return sum(len(payload.encode()) for _, payload, _, _ in self._held.get(src, []))

    def _route(self, src: str, dest: str, payload: str, ack: Acked | None) -> Sending | None:
        self.sent.append(SentDm(src, dest, payload))
        held = self._held.get(src)
        if held is None:
            self._deliver(src, dest, payload, ack)
            return None
        sending: Sending = asyncio.get_running_loop().create_future()
        held.append((dest, payload, sending, ack))
        return sending

    def _deliver(self, src: str, dest: str, payload: str, ack: Acked | None) -> None:
        if ack is not None and dest in self._inboxes and not ack.done():
            ack.set_result(True)
        payloads = [payload] if self.deliver is None else list(self.deliver(src, dest, payload))
        self.inject(src, dest, payloads)

    def inject(self, src: str, dest: str, payloads: Iterable[str]) -> None:
        """Deliver payloads to `dest` as if `src` sent them (used by hooks to release held DMs)."""
        inbox = self._inboxes.get(dest)
        if inbox is None:
            log.debug("memory network: no such address %s; DM dropped", dest)
            return
        for payload in payloads:
            inbox.put_nowait(Incoming(src, payload))

    def sent_by(self, src: str) -> list[SentDm]:
        """Every DM `src` sent, in order."""
        return [dm for dm in self.sent if dm.src == src]


class MemoryTransport:
    """A `Transport` on a `MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, address: str) -> None:
        """Not reachable until `start()`."""
        self._network = network
        self._address = address
        self._inbox: asyncio.Queue[Incoming | None] | None = None

    @property
    def address(self) -> str:
        """This transport's address (`name.pubkeyhex`)."""
        return self._address

    async def start(self) -> str:
        """Join the network; return the address."""
        self._inbox = self._network._register(self._address)
        return self._address

    async def send(self, dest: str, payload: str, *, ack: Acked | None = None) -> Sending | None:
        """Deliver a DM (fire and forget: unknown destinations drop it, as NKN would).

        Returns a pending `Sending` while the network holds this sender's link, else None.
        `ack` completes when the DM reaches its destination's inbox.
        """
        if self._inbox is None:
            raise RuntimeError("transport not started")
        return self._network._route(self._address, dest, payload, ack)

    async def incoming(self) -> AsyncIterator[Incoming]:
        """DMs for this address until `close()`."""
        if self._inbox is None:
            raise RuntimeError("transport not started")
        inbox = self._inbox
        while True:
            message = await inbox.get()
            if message is None:
                return
            yield message

    async def close(self) -> None:
        """Leave the network; `incoming()` ends."""
        self._network._unregister(self._address)
