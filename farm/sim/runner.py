"""A loaded (or loading) model instance: its runner options, slots, references and keep-alive."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, replace

from farm.sim.memory import runner_bytes
from farm.sim.slots import Slots
from farm.sim.store import LocalModel

# Go's MaxInt64 nanoseconds, what "forever" adds to now in /api/ps (about 292 years).
FOREVER_S = (2**63 - 1) / 1e9


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """The options a runner is started with; a request asking for others forces a reload."""

    num_ctx: int
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_thread: int = 0
    draft_num_predict: int = 4

    def compatible(self, requested: RunnerOptions) -> bool:
        """True when a request with `requested` options can use a runner started with these.

        num_gpu -1 ("automatic") in the request matches whatever the runner chose, as in
        Ollama's needsReload.
        """
        if requested.num_gpu < 0:
            return replace(self, num_gpu=-1) == requested
        return self == requested


class Runner:
    """One model instance: loading → loaded → (expiring) → unloaded."""

    def __init__(
        self, model: LocalModel, options: RunnerOptions, parallel: int, keep_alive_s: float
    ) -> None:
        self.model = model
        self.options = options
        self.slots = Slots(parallel)
        self.parallel = parallel
        self.keep_alive_s = keep_alive_s
        self.loaded = False
        self.expiring = False
        self.unloaded = False
        self.refcount = 0
        self.expires_at: float | None = None  # wall-clock seconds, set when idle
        self.idle = asyncio.Event()
        self.idle.set()
        self.timer: asyncio.TimerHandle | None = None

    def usable_for(self, options: RunnerOptions) -> bool:
        """Whether a request can take this runner right away (the scheduler's fast path)."""
        return self.loaded and not self.expiring and self.options.compatible(options)

    def take(self, keep_alive_s: float | None) -> None:
        """Add a reference; stops the idle countdown. A request's keep_alive wins for all."""
        if keep_alive_s is not None:
            self.keep_alive_s = keep_alive_s
        self.refcount += 1
        self.idle.clear()
        self.expires_at = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def ps_expires_at(self) -> float:
        """`expires_at` for /api/ps: now + keep-alive while busy or loading, else the deadline."""
        if self.expires_at is not None:
            return self.expires_at
        ka = self.keep_alive_s
        return time.time() + (FOREVER_S if math.isinf(ka) else ka)

    def memory_bytes(self) -> int:
        """Weights plus a KV cache of num_ctx × NUM_PARALLEL (`farm.sim.memory`)."""
        return runner_bytes(self.model, self.options.num_ctx, self.parallel)
