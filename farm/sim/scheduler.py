"""The scheduler: which runners are loaded, the bounded pending queue, loads and evictions.

As in Ollama: a request whose model is loaded with compatible runner options takes
it at once. Otherwise it joins the pending queue (capacity MAX_QUEUE, full → 503) that one
worker drains one request at a time: it evicts an incompatible runner of the same model or a
victim when MAX_LOADED_MODELS is reached (waiting for their in-flight requests to finish), then
loads. Everything queued behind a load waits for it (head-of-line blocking). A client that
leaves while queued is skipped; one that leaves during its own load aborts the load. What a
load and an unload do is the engine's business (`farm.sim.engines`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

from farm.sim.disconnect import unless_gone
from farm.sim.engines.base import Engine
from farm.sim.errors import ApiError, ClientGone, ServerBusy
from farm.sim.runner import FOREVER_S, Runner, RunnerOptions
from farm.sim.settings import SimSettings
from farm.sim.store import LocalModel

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    model: LocalModel
    options: RunnerOptions
    keep_alive_s: float | None
    gone: asyncio.Event
    future: asyncio.Future[Runner]


class Scheduler:
    """Owns the runners; `acquire`/`release` bracket every inference request."""

    def __init__(self, config: SimSettings, engine: Engine) -> None:
        self._config = config
        self._engine = engine
        self._runners: dict[str, Runner] = {}
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.loads: dict[str, int] = {}

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker that drains the pending queue."""
        self._worker = asyncio.create_task(self._drain(), name="sim-scheduler")

    async def close(self) -> None:
        """Stop the worker and drop every runner."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.wait({self._worker})
        for runner in list(self._runners.values()):
            self._unload(runner)

    # ----- introspection -----------------------------------------------------------------------
    @property
    def queue_length(self) -> int:
        """Requests in the pending queue (the one being loaded for is not counted, as in Go)."""
        return sum(1 for p in self._pending if not p.gone.is_set())

    def runners(self) -> list[Runner]:
        """Runners loaded or loading."""
        return list(self._runners.values())

    def runner_for(self, model: LocalModel) -> Runner | None:
        """The current runner of a model, if any."""
        return self._runners.get(model.name.key)

    # ----- request path ------------------------------------------------------------------------
    async def acquire(
        self,
        model: LocalModel,
        options: RunnerOptions,
        keep_alive_s: float | None,
        gone: asyncio.Event,
    ) -> Runner:
        """Get a loaded runner (with a reference held) for a request; may queue and load."""
        runner = self._runners.get(model.name.key)
        if runner is not None and runner.usable_for(options):
            runner.take(keep_alive_s)
            return runner
        if self.queue_length >= self._config.max_queue:
            raise ServerBusy()
        loop = asyncio.get_running_loop()
        pending = _Pending(model, options, keep_alive_s, gone, loop.create_future())
        self._pending.append(pending)
        self._wakeup.set()
        try:
            return await unless_gone(asyncio.shield(pending.future), gone)
        except ClientGone:
            if pending.future.done() and pending.future.exception() is None:
                self.release(pending.future.result())
            raise

    def release(self, runner: Runner) -> None:
        """Drop a reference; the idle countdown (or an immediate unload) starts at zero."""
        runner.refcount -= 1
        if runner.refcount > 0:
            return
        runner.idle.set()
        if runner.expiring or runner.unloaded:
            return  # an eviction is waiting for this moment, or it is already gone
        self._start_countdown(runner)

    def request_unload(self, model: LocalModel) -> None:
        """`keep_alive: 0` with an empty prompt: unload now, or when the last request ends."""
        runner = self._runners.get(model.name.key)
        if runner is None or not runner.loaded:
            return
        runner.keep_alive_s = 0.0
        if runner.refcount == 0 and not runner.expiring:
            self._unload(runner)

    # ----- worker ------------------------------------------------------------------------------
    async def _drain(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            pending = self._pending.popleft()
            if pending.gone.is_set():
                continue  # its client left while queued: nothing is loaded for it
            try:
                runner = await self._serve(pending)
            except ClientGone:
                log.info("client closed the connection before the load finished, aborting load")
                continue
            except ApiError as exc:
                pending.future.set_exception(exc)
                continue
            if pending.gone.is_set():
                self.release(runner)
            else:
                pending.future.set_result(runner)

    async def _serve(self, pending: _Pending) -> Runner:
        key = pending.model.name.key
        current = self._runners.get(key)
        if current is not None and current.usable_for(pending.options):
            current.take(pending.keep_alive_s)
            return current
        if current is not None:
            log.info("reloading %s: runner options changed", pending.model.name.display)
            await self._evict(current)
        while len(self._runners) >= self._config.max_loaded_models:
            await self._evict(self._victim())
        if pending.gone.is_set():
            raise ClientGone()
        parallel = 1 if "embedding" in pending.model.capabilities else self._config.num_parallel
        keep_alive = pending.keep_alive_s
        runner = Runner(
            pending.model,
            pending.options,
            parallel,
            self._config.keep_alive if keep_alive is None else keep_alive,
        )
        self._runners[key] = runner
        try:
            await unless_gone(self._engine.load(runner), pending.gone)
        except (ClientGone, ApiError):
            self._unload(runner)
            raise
        runner.loaded = True
        display = pending.model.name.display
        self.loads[display] = self.loads.get(display, 0) + 1
        runner.take(None)
        return runner

    def _victim(self) -> Runner:
        # Idle runners first, soonest to expire first; a busy one only if all are busy.
        def rank(runner: Runner) -> tuple[bool, float]:
            return (runner.refcount > 0, runner.ps_expires_at())

        return min(self._runners.values(), key=rank)

    async def _evict(self, runner: Runner) -> None:
        runner.expiring = True
        if runner.timer is not None:
            runner.timer.cancel()
        await runner.idle.wait()
        self._unload(runner)

    def _start_countdown(self, runner: Runner) -> None:
        keep_alive = runner.keep_alive_s
        if keep_alive == 0:
            self._unload(runner)
            return
        if math.isinf(keep_alive):
            runner.expires_at = time.time() + FOREVER_S
            return
        runner.expires_at = time.time() + keep_alive
        loop = asyncio.get_running_loop()
        runner.timer = loop.call_later(keep_alive, self._expire, runner)

    def _expire(self, runner: Runner) -> None:
        if runner.refcount == 0 and not runner.expiring and not runner.unloaded:
            log.info("keep-alive expired for %s", runner.model.name.display)
            self._unload(runner)

    def _unload(self, runner: Runner) -> None:
        if self._runners.get(runner.model.name.key) is runner:
            del self._runners[runner.model.name.key]
        runner.loaded = False
        runner.unloaded = True
        if runner.timer is not None:
            runner.timer.cancel()
            runner.timer = None
        self._engine.unload(runner)
