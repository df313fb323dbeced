"""`UsageWriter`: usage rows committed on a thread of their own, never on the event loop.

A commit is usually tens of microseconds, but now and then SQLite checkpoints its WAL into
the database and fsyncs, which would stall every stream the proxy carries. The writer thread
owns its own connection to the key database; the forwarder awaits `write()` before a
response's last chunk (so a row the client saw finish is on disk), and `submit()`s the rows
of requests that failed without waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from pathlib import Path

from farm.keys.errors import KeysError
from farm.keys.records import UsageRow
from farm.keys.store import KeyStore

logger = logging.getLogger(__name__)


class UsageWriter:
    """One writer thread for one key database."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="usage")

    def _store(self) -> KeyStore:
        store: KeyStore | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = KeyStore(self._path)
        return store

    def _record(self, row: UsageRow) -> None:
        try:
            self._store().record(row)
        except KeysError:
            logger.exception("could not record usage for key %r", row.key)

    async def write(self, row: UsageRow) -> None:
        """Commit `row`; returns once it is on disk."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._record, row)

    def submit(self, row: UsageRow) -> None:
        """Commit `row` soon, without waiting."""
        self._pool.submit(self._record, row)

    def close(self) -> None:
        """Write what is pending, then close the thread's connection."""
        self._pool.submit(self._close_store)
        self._pool.shutdown(wait=True)

    def _close_store(self) -> None:
        store: KeyStore | None = getattr(self._local, "store", None)
        if store is not None:
            store.close()
