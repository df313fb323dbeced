"""Which engine a simulator runs: `--engine synthetic` (the default) or `--engine llamacpp`."""

from __future__ import annotations

from farm.sim.engines.llamacpp.engine import LlamaCppEngine
from farm.sim.engines.synthetic import SyntheticEngine
from farm.sim.settings import SimSettings


def engine_for(config: SimSettings) -> SyntheticEngine | LlamaCppEngine:
    """The configured engine, ready to start; EngineUnavailable when a piece is missing."""
    if config.engine == "llamacpp":
        return LlamaCppEngine.prepare(config)
    return SyntheticEngine(config)
