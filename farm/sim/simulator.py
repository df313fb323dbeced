"""The simulator's shared state (store, engine, scheduler, counters) and model look-ups.

Routes get one `Simulator`, created by `create_app`; nothing lives at module level.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from farm.sim.disconnect import unless_gone
from farm.sim.engines.base import Engine
from farm.sim.errors import BadRequest, NotFound
from farm.sim.generation import RunMetrics
from farm.sim.names import ModelName, parse_name
from farm.sim.runner import Runner, RunnerOptions
from farm.sim.scheduler import Scheduler
from farm.sim.settings import SimSettings
from farm.sim.stats import RequestStats
from farm.sim.store import LocalModel, Store


class Simulator:
    """Everything a route needs; one per app."""

    def __init__(self, config: SimSettings, store: Store, engine: Engine) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.scheduler = Scheduler(config, engine)
        self.stats = RequestStats()

    # ----- model look-ups with Ollama's error texts -------------------------------------------
    def find(self, name: str, *, empty_is_404: bool = False) -> LocalModel:
        """Resolve a request's model: 400 `model is required` / `invalid model name`, 404."""
        if not name:
            if empty_is_404:
                raise NotFound("model '' not found")
            raise BadRequest("model is required")
        parsed = parse_name(name)
        if parsed is None:
            raise BadRequest("invalid model name")
        model = self.store.get(parsed)
        if model is None:
            raise NotFound(f"model '{name}' not found")
        return model

    @staticmethod
    def parse(name: str, invalid: str = "invalid model name") -> ModelName:
        """Validate a name that need not exist yet (pull, copy destination)."""
        parsed = parse_name(name)
        if parsed is None:
            raise BadRequest(invalid)
        return parsed

    @staticmethod
    def model_params(model: LocalModel) -> dict[str, Any]:
        """The model's default options from its params layer."""
        text = model.texts.get("params")
        return dict(json.loads(text)) if text else {}

    # ----- scheduling --------------------------------------------------------------------------
    async def load_only(
        self,
        model: LocalModel,
        options: RunnerOptions,
        keep_alive_s: float | None,
        gone: asyncio.Event,
    ) -> None:
        """Make the model resident (the empty-prompt "load" request) and let it go idle."""
        runner = await self.scheduler.acquire(model, options, keep_alive_s, gone)
        self.scheduler.release(runner)

    @asynccontextmanager
    async def slot(
        self,
        model: LocalModel,
        options: RunnerOptions,
        keep_alive_s: float | None,
        gone: asyncio.Event,
        metrics: RunMetrics,
    ) -> AsyncIterator[Runner]:
        """Hold a loaded runner and one of its parallel slots for one inference run.

        `load_duration` stops when the scheduler hands over the runner; the slot wait after
        that shows only in `total_duration`, as in Ollama.
        """
        runner = await self.scheduler.acquire(model, options, keep_alive_s, gone)
        metrics.loaded_ns = time.perf_counter_ns()
        try:
            await unless_gone(runner.slots.acquire(), gone)
            try:
                yield runner
            finally:
                runner.slots.release()
        finally:
            self.scheduler.release(runner)

    # ----- introspection ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The `/_sim/state` document."""
        models: dict[str, dict[str, Any]] = {}
        names = [m.name.display for m in self.store.models()]
        names += [r.model.name.display for r in self.scheduler.runners()]
        for display in dict.fromkeys(names):
            models[display] = {"loaded": False, "active": 0, "waiting": 0, "loads": 0}
            models[display]["loads"] = self.scheduler.loads.get(display, 0)
        for runner in self.scheduler.runners():
            entry = models[runner.model.name.display]
            entry["loaded"] = runner.loaded
            entry["active"] = runner.slots.active
            entry["waiting"] = runner.slots.waiting
        return {
            "synthetic": self.engine.synthetic,
            "engine": self.engine.describe(),
            "models": models,
            "scheduler_queue": self.scheduler.queue_length,
            "requests": self.stats.as_json(),
        }
