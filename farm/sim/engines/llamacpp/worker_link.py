"""`WorkerLink`: the supervised llama.cpp worker, and the routing of its answers by id.

One worker process at a time holds the model. If it exits (a crash, a kill), every command
waiting on it fails with Ollama's "runner has unexpectedly stopped" text, every open stream
ends, and a new worker is started after a back-off; `generation` counts the workers that
loaded the model, so the engine knows its contexts died with the old one and opens them
again. A worker that cannot load the model three times in a row leaves the link broken,
and every later request fails at once with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from farm.sim.engines.llamacpp.process import WorkerProcess
from farm.sim.engines.llamacpp.protocol import (
    Command,
    Event,
    Failed,
    Fatal,
    LoadCommand,
    Loaded,
    ShutdownCommand,
)
from farm.sim.errors import RUNNER_DIED, RunnerFailure

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.2
RESTART_MAX_S = 5.0
GIVE_UP_AFTER = 3
CLOSE_TIMEOUT_S = 3.0


class WorkerLink:
    """Starts, supervises and talks to the worker (see the module docstring)."""

    def __init__(self, node: str, model_path: str, threads: int) -> None:
        self._node = node
        self._model_path = model_path
        self._threads = threads
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[Event]] = {}
        self._streams: dict[int, asyncio.Queue[Event | None]] = {}
        self._proc: WorkerProcess | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_error = ""
        self.broken: str | None = None
        self.generation = 0
        self.restarts = 0
        self.loaded: Loaded | None = None

    # ----- life --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the supervisor (it spawns the worker and loads the model)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="llamacpp-worker")

    async def close(self) -> None:
        """Shut the worker down (killing it after a grace period) and stop supervising."""
        self._closing = True
        proc = self._proc
        if proc is not None:
            await proc.close(ShutdownCommand(self.new_id()).encode(), CLOSE_TIMEOUT_S)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def pid(self) -> int | None:
        """The running worker's process id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_ready(self) -> bool:
        """Whether a worker holds the model now."""
        return self._ready.is_set()

    async def ready(self) -> int:
        """Wait until a worker holds the model; its `generation`. RunnerFailure if broken."""
        while not self._ready.is_set():
            if self.broken is not None:
                raise RunnerFailure(self.broken)
            self._changed.clear()
            await self._changed.wait()
        return self.generation

    # ----- talking -----------------------------------------------------------------------------
    def new_id(self) -> int:
        """A fresh command id."""
        return next(self._ids)

    def post(self, command: Command) -> bool:
        """Send a command without waiting for an answer; False when no worker runs."""
        return self._proc is not None and self._proc.write(command.encode())

    async def request(self, command: Command) -> Event:
        """Send a command and wait for its one answer; RunnerFailure when it failed."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._replies[command.id] = future
        try:
            if not self.post(command):
                raise RunnerFailure(RUNNER_DIED)
            event = await future
        finally:
            self._replies.pop(command.id, None)
        if isinstance(event, Failed):
            raise RunnerFailure(event.error)
        return event

    def open_stream(self, ident: int) -> asyncio.Queue[Event | None]:
        """The queue that receives every event of command `ident` (None: the worker died)."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._streams[ident] = queue
        return queue

    def close_stream(self, ident: int) -> None:
        """Stop routing events of `ident`."""
        self._streams.pop(ident, None)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Fatal):
            log.error("llama.cpp worker: %s", event.error)
            self._last_error = event.error
            return
        queue = self._streams.get(event.id)
        if queue is not None:
            queue.put_nowait(event)
            return
        future = self._replies.get(event.id)
        if future is not None and not future.done():
            future.set_result(event)

    # ----- supervision -------------------------------------------------------------------------
    async def _supervise(self) -> None:
        failures = 0
        for attempt in itertools.count():
            self._last_error = ""
            proc = await WorkerProcess.spawn(self._node)
            self._proc = proc
            loaded = await self._serve(proc)
            self._proc = None
            if self._closing:
                return
            failures = 0 if loaded else failures + 1
            reason = self._last_error or proc.stderr_tail()[-300:] or "no output"
            if failures >= GIVE_UP_AFTER:
                self.broken = f"the llama.cpp worker cannot load the model: {reason}"
                log.error("%s", self.broken)
                self._changed.set()
                return
            delay = min(RESTART_MAX_S, RESTART_MIN_S * 2**failures)
            log.warning(
                "llama.cpp worker exited (code %s: %s); restarting in %.1f s",
                proc.returncode,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            self.restarts = attempt + 1

    async def _serve(self, proc: WorkerProcess) -> bool:
        """Run one worker until it exits; True if it loaded the model."""
        load = LoadCommand(self.new_id(), self._model_path, self._threads)
        proc.write(load.encode())
        loaded = False
        try:
            async for event in proc.events():
                self._dispatch(event)
                if not loaded and isinstance(event, Loaded) and event.id == load.id:
                    loaded = True
                    self.loaded = event
                    self.generation += 1
                    self._ready.set()
                    self._changed.set()
                    log.info("llama.cpp worker %d loaded the model", proc.pid)
        finally:
            self._ready.clear()
            await proc.wait()
            self._fail_waiters()
        return loaded

    def _fail_waiters(self) -> None:
        for future in self._replies.values():
            if not future.done():
                future.set_exception(RunnerFailure(RUNNER_DIED))
        self._replies.clear()
        for queue in self._streams.values():
            queue.put_nowait(None)
        self._changed.set()
