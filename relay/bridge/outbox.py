"""The outbox: outgoing DMs kept until the bridge confirms it wrote them (bounded).

A DM waits here while the bridge is down, moves to "in flight" when it is handed to a bridge,
and leaves only on that bridge's `sent` (or after it failed for good). When a bridge dies, what
was in flight goes back to the front, in order, for the next one. Each DM carries a `Sending`
future that completes when it leaves, so senders can tell a backlog from an idle link.

The bound is on count and on bytes: NKN DMs reach 4 MB, so 1,000 of them could be 4 GB. A
DM that would pass either bound is refused, except into an empty outbox (so any DM NKN
accepts can go).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field

from relay.bridge.config import DEFAULT_QUEUE_LIMIT_B
from relay.bridge.errors import QueueFullError
from relay.transport import Acked, Sending


@dataclass(slots=True)
class Outgoing:
    """One DM, its size, how often sending it has failed, and the ACK it asks for (if any)."""

    id: int
    dest: str
    payload: str
    size_b: int = 0
    ack: Acked | None = None
    attempts: int = 0
    done: Sending = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self) -> None:
        """It left the outbox (sent or given up): wake whoever waits on `done`."""
        if not self.done.done():
            self.done.set_result(None)


class Outbox:
    """A bounded FIFO of DMs with an in-flight set; one instance per transport."""

    def __init__(self, limit: int, limit_b: int = DEFAULT_QUEUE_LIMIT_B) -> None:
        """At most `limit` DMs and `limit_b` bytes unconfirmed (waiting or in flight)."""
        self._limit = limit
        self._limit_b = limit_b
        self._ids = itertools.count(1)
        self._waiting: collections.deque[Outgoing] = collections.deque()
        self._inflight: dict[int, Outgoing] = {}
        self._bytes = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    def __len__(self) -> int:
        return len(self._waiting) + len(self._inflight)

    @property
    def size_b(self) -> int:
        """Bytes of the DMs here, waiting or in flight."""
        return self._bytes

    def put(
        self, dest: str, payload: str, *, size_b: int | None = None, ack: Acked | None = None
    ) -> Sending:
        """Queue a DM (`size_b`: its UTF-8 size, if known); QueueFullError past a bound."""
        size = len(payload.encode()) if size_b is None else size_b
        if len(self) >= self._limit:
            raise QueueFullError(
                f"{self._limit} DMs already wait for the NKN bridge; this one was not queued"
            )
        if self._bytes and self._bytes + size > self._limit_b:
            raise QueueFullError(
                f"{self._bytes} bytes of DMs already wait for the NKN bridge (limit "
                f"{self._limit_b}); this one of {size} was not queued"
            )
        item = Outgoing(next(self._ids), dest, payload, size, ack)
        self._waiting.append(item)
        self._bytes += size
        self._drained.clear()
        self._wake.set()
        return item.done

    async def take(self) -> Outgoing:
        """Wait for the next DM and mark it in flight."""
        [item] = await self.take_many(1)
        return item

    async def take_many(self, max_items: int) -> list[Outgoing]:
        """Wait for DMs and mark up to `max_items` of them in flight, oldest first."""
        while not self._waiting:
            self._wake.clear()
            await self._wake.wait()
        taken: list[Outgoing] = []
        while self._waiting and len(taken) < max_items:
            item = self._waiting.popleft()
            self._inflight[item.id] = item
            taken.append(item)
        return taken

    def in_flight(self, msg_id: int) -> Outgoing | None:
        """The DM in flight under `msg_id`, if any."""
        return self._inflight.get(msg_id)

    def confirm(self, msg_id: int) -> Outgoing | None:
        """The bridge wrote it: forget it and return it (None if unknown)."""
        item = self._inflight.pop(msg_id, None)
        if item is not None:
            self._bytes -= item.size_b
            item.settle()
        self._check_drained()
        return item

    def failed(self, msg_id: int) -> Outgoing | None:
        """Sending failed: take it out of flight and count the try; None if unknown.

        Then either `retry_first(item)` or `give_up(item)`.
        """
        item = self._inflight.pop(msg_id, None)
        if item is not None:
            item.attempts += 1
        self._check_drained()
        return item

    def retry_first(self, item: Outgoing) -> None:
        """Put a failed DM back at the front, to go out before anything newer."""
        self._waiting.appendleft(item)
        self._drained.clear()
        self._wake.set()

    def give_up(self, item: Outgoing) -> None:
        """Drop a failed DM for good: its `done` completes and its ACK never comes."""
        self._bytes -= item.size_b
        item.settle()
        _settle_ack(item, False)

    def requeue_inflight(self) -> None:
        """The bridge died: what it had not confirmed goes back to the front, in order."""
        for msg_id in sorted(self._inflight, reverse=True):
            self._waiting.appendleft(self._inflight.pop(msg_id))
        if self._waiting:
            self._wake.set()

    def abandon(self) -> None:
        """The transport closed: settle every DM still here (they will not be sent)."""
        for item in [*self._waiting, *self._inflight.values()]:
            item.settle()
            _settle_ack(item, False)
        self._waiting.clear()
        self._inflight.clear()
        self._bytes = 0
        self._check_drained()

    async def wait_drained(self) -> None:
        """Return once every queued DM was confirmed or given up."""
        await self._drained.wait()

    def _check_drained(self) -> None:
        if not self._waiting and not self._inflight:
            self._drained.set()


def _settle_ack(item: Outgoing, acked: bool) -> None:
    if item.ack is not None and not item.ack.done():
        item.ack.set_result(acked)
    item.ack = None
