"""Racing work against the client going away (Ollama binds every run to the request context)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from farm.sim.errors import ClientGone

T = TypeVar("T")


async def unless_gone(work: Awaitable[T], gone: asyncio.Event) -> T:
    """Await `work`, but raise ClientGone (and cancel it) as soon as `gone` is set."""
    if gone.is_set():
        if asyncio.iscoroutine(work):
            work.close()
        raise ClientGone()
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    # asyncio.wait never raises the task's CancelledError, so ours is not swallowed.
    await asyncio.wait({task})
    raise ClientGone()
