"""A FIFO counting semaphore: a runner's NUM_PARALLEL parallel slots.

asyncio.Semaphore does not promise strict FIFO hand-over, and Ollama's weighted semaphore
does; a slot released while others wait goes straight to the oldest waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    """`size` slots handed out first come, first served; waiting has no limit."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def active(self) -> int:
        """Slots currently held."""
        return self.size - self._free

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return sum(1 for fut in self._waiters if not fut.done())

    async def acquire(self) -> None:
        """Take a slot, waiting in line; cancelling the wait gives the slot back if granted."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just before the cancel landed: pass it on
            elif fut in self._waiters:
                # release() may already have dropped this cancelled waiter from the line.
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        """Give a slot back, handing it to the oldest live waiter if any."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._free += 1
