"""The backend pool: per-backend state and the choice of backend for each request.

Balancing is least-in-flight, made model-aware: a backend that already has the requested
model loaded (from `/api/ps`, or because it just served it) wins over one that only has it in
its store (`/api/tags`), which wins over one that has neither, so no request triggers a load
elsewhere by accident. When the farm's slot count is known, a loaded backend whose slots are
all taken loses that preference: the request would only queue there, while another replica
can load the model and serve it. Ties rotate, so equal backends share a burst evenly.
Backends marked down are skipped while any other is up.

Membership can change while the proxy runs (`--backend-dns`): `sync` adds the backends a
name now resolves to and drains the ones it no longer does. A draining backend is out of
`backends`, so it gets no new request, but the exchanges under way keep their reference and
finish; `prune` forgets it once the last one has ended.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from farm.common.net import is_loopback_host

logger = logging.getLogger(__name__)

STATIC_SOURCE = "static"


@dataclass(slots=True, eq=False)
class Backend:
    """One Ollama (or simulator) backend and what the proxy currently knows about it."""

    url: str
    up: bool = True
    in_flight: int = 0
    version: str | None = None
    loaded: frozenset[str] = frozenset()
    stored: frozenset[str] = frozenset()
    last_error: str | None = None
    failed_probes: int = 0
    served: int = 0
    synthetic: bool = False  # the project's Ollama simulator, not a real Ollama
    engine: str | None = None  # the simulator's engine label, e.g. "llama.cpp (real weights: ...)"
    label: str | None = None  # what the launcher says it holds, e.g. "box-a gpu0 GPU-5f3c..."
    source: str = STATIC_SOURCE  # "static" (--backend) or "dns NAME:PORT" (--backend-dns)
    draining: bool = False  # left the pool: finishes what it runs, gets nothing new
    loopback: bool = field(init=False)

    def __post_init__(self) -> None:
        self.loopback = is_loopback_host(urlsplit(self.url).hostname or "")

    def rank(self, model: str | None, slots: int | None) -> int:
        """0 when `model` is loaded here (with a free slot, if `slots` is known), 1 when it
        is in the store (or loaded but busy), 2 otherwise."""
        if model is None:
            return 0
        if model in self.loaded:
            return 0 if slots is None or self.in_flight < slots else 1
        return 1 if model in self.stored else 2


class BackendPool:
    """All backends; picks one per request and records their health."""

    # Consecutive failed health probes before a backend is marked down. A refused connection
    # while forwarding marks it down at once (see `mark_down`).
    DOWN_AFTER_PROBES = 2

    def __init__(
        self,
        urls: Sequence[str],
        slots: int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        labels = labels or {}
        self.backends = [Backend(url, label=labels.get(url)) for url in urls]
        self.draining: list[Backend] = []
        self.slots = slots
        self._turn = itertools.count()

    @property
    def in_flight(self) -> int:
        """Requests being forwarded right now, over all backends (draining ones included)."""
        return sum(b.in_flight for b in [*self.backends, *self.draining])

    def pick(
        self, model: str | None, exclude: Iterable[Backend] = (), up_only: bool = False
    ) -> Backend | None:
        """The backend for the next request for `model`, or None when all are excluded
        (or, with `up_only`, when none of the others is up)."""
        live = self.candidates(exclude, up_only)
        if not live:
            return None
        start = next(self._turn) % len(live)
        rotated = live[start:] + live[:start]
        return min(rotated, key=lambda b: (b.rank(model, self.slots), b.in_flight))

    def candidates(self, exclude: Iterable[Backend] = (), up_only: bool = False) -> list[Backend]:
        """The backends `pick` chooses from: those up, not in `exclude`."""
        excluded = set(map(id, exclude))
        candidates = [b for b in self.backends if id(b) not in excluded]
        # Health state may be stale: with every backend down, try them anyway (unless the
        # caller wants a healthy one only).
        return [b for b in candidates if b.up] or ([] if up_only else candidates)

    def mark_down(self, backend: Backend, reason: str) -> None:
        """Take a backend out of rotation until a health probe succeeds."""
        if backend.up:
            logger.warning("backend %s marked down: %s", backend.url, reason)
        backend.up = False
        backend.last_error = reason

    def record_probe(
        self,
        backend: Backend,
        version: str | None,
        loaded: Iterable[str] | None,
        stored: Iterable[str] | None,
        error: str | None,
    ) -> None:
        """Apply one health probe's result; `error` None means the backend answered."""
        if error is not None:
            backend.failed_probes += 1
            backend.last_error = error
            if backend.failed_probes >= self.DOWN_AFTER_PROBES or not backend.up:
                self.mark_down(backend, error)
            return
        if not backend.up:
            logger.warning("backend %s is back up", backend.url)
        backend.up = True
        backend.failed_probes = 0
        backend.last_error = None
        backend.version = version
        if loaded is not None:
            backend.loaded = frozenset(loaded)
        if stored is not None:
            backend.stored = frozenset(stored)

    def record_served(self, backend: Backend, model: str | None) -> None:
        """A request for `model` got a successful answer, so the model is loaded there now."""
        backend.served += 1
        if model is not None and model not in backend.loaded:
            backend.loaded = backend.loaded | {model}

    def sync(self, source: str, urls: Iterable[str]) -> list[Backend]:
        """Make `source`'s backends exactly `urls`; returns the backends added.

        A URL already in the pool from another source is left to that source. One that
        comes back while draining rejoins as it was (its connections and counters intact).
        """
        wanted = list(dict.fromkeys(urls))
        present = {b.url for b in self.backends}
        for backend in [b for b in self.backends if b.source == source and b.url not in wanted]:
            logger.info("backend %s left %s: draining", backend.url, source)
            self.backends.remove(backend)
            backend.draining = True
            self.draining.append(backend)
        added: list[Backend] = []
        for url in wanted:
            if url in present:
                continue
            back = next((b for b in self.draining if b.url == url), None)
            if back is not None:
                self.draining.remove(back)
                back.draining = False
            else:
                back = Backend(url, source=source)
                added.append(back)
            logger.info("backend %s joined from %s", url, source)
            self.backends.append(back)
        return added

    def prune(self) -> list[Backend]:
        """Forget draining backends with nothing left in flight; returns them."""
        done = [b for b in self.draining if b.in_flight <= 0]
        self.draining = [b for b in self.draining if b.in_flight > 0]
        return done
