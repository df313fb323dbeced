"""The outbox: outgoing DMs kept until the bridge confirms it wrote them (bounded).

A DM waits here while the bridge is down, moves to "in flight" when it is handed to a bridge,
and leaves only on that bridge's `sent` (or after it failed for good). When a bridge dies, what
was in flight goes back to the front, in order, for the next one. Each DM carries a `Sending`
future that completes when it leaves, so senders can tell a backlog from an idle link.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field

from relay.bridge.errors import QueueFullError
from relay.transport import Sending


@dataclass(slots=True)
class Outgoing:
    """One DM and how often sending it has failed."""

    id: int
    dest: str
    payload: str
    attempts: int = 0
    done: Sending = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self) -> None:
        """It left the outbox (sent or given up): wake whoever waits on `done`."""
        if not self.done.done():
            self.done.set_result(None)


class Outbox:
    """A bounded FIFO of DMs with an in-flight set; one instance per transport."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._ids = itertools.count(1)
        self._waiting: collections.deque[Outgoing] = collections.deque()
        self._inflight: dict[int, Outgoing] = {}
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    def __len__(self) -> int:
        return len(self._waiting) + len(self._inflight)

    def put(self, dest: str, payload: str) -> Sending:
        """Queue a DM; raise QueueFullError when `limit` DMs are already unconfirmed."""
        if len(self) >= self._limit:
            raise QueueFullError(
                f"{self._limit} DMs already wait for the NKN bridge; this one was not queued"
            )
        item = Outgoing(next(self._ids), dest, payload)
        self._waiting.append(item)
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

    def confirm(self, msg_id: int) -> None:
        """The bridge wrote it: forget it."""
        item = self._inflight.pop(msg_id, None)
        if item is not None:
            item.settle()
        self._check_drained()

    def failed(self, msg_id: int) -> Outgoing | None:
        """Sending failed: take it out of flight and count the try; None if unknown."""
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

    async def wait_drained(self) -> None:
        """Return once every queued DM was confirmed or given up."""
        await self._drained.wait()

    def _check_drained(self) -> None:
        if not self._waiting and not self._inflight:
            self._drained.set()
