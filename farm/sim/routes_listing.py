"""Read-only routes: `/`, `/api/version`, `/api/tags`, `/api/ps`, `GET /_sim/state`."""

from __future__ import annotations

from typing import Any

from farm.sim.exchange import TEXT_TYPE, Exchange
from farm.sim.simulator import Simulator
from farm.sim.stamps import local_stamp
from farm.sim.store import LocalModel

# The Ollama release whose API the simulator mirrors; clients check it against their minimum.
OLLAMA_VERSION = "0.33.0"


async def root(sim: Simulator, exchange: Exchange) -> None:
    """`GET|HEAD /`: the liveness text."""
    await exchange.respond(200, b"Ollama is running", TEXT_TYPE)


async def version(sim: Simulator, exchange: Exchange) -> None:
    """`GET|HEAD /api/version`."""
    await exchange.json(200, {"version": OLLAMA_VERSION})


def _details(model: LocalModel) -> dict[str, Any]:
    return model.details()


def tag_entry(model: LocalModel) -> dict[str, Any]:
    """One `/api/tags` entry."""
    entry: dict[str, Any] = {
        "name": model.name.display,
        "model": model.name.display,
        "modified_at": local_stamp(model.modified_at),
        "size": model.size,
        "digest": model.digest,
        "details": _details(model),
    }
    if model.capabilities:
        entry["capabilities"] = list(model.capabilities)
    return entry


async def tags(sim: Simulator, exchange: Exchange) -> None:
    """`GET|HEAD /api/tags`: local models, newest first; `{"models":[]}` when empty."""
    await exchange.json(200, {"models": [tag_entry(m) for m in sim.store.models()]})


async def ps(sim: Simulator, exchange: Exchange) -> None:
    """`GET /api/ps`: loaded (and loading) runners, latest `expires_at` first."""
    entries = []
    runners = sorted(sim.scheduler.runners(), key=lambda r: r.ps_expires_at(), reverse=True)
    for runner in runners:
        memory = runner.memory_bytes()
        model = runner.model
        entries.append(
            {
                "name": model.name.display,
                "model": model.name.display,
                "size": memory,
                "digest": model.digest,
                "details": _details(model),
                "expires_at": local_stamp(runner.ps_expires_at()),
                "size_vram": memory,
                "context_length": runner.options.num_ctx,
            }
        )
    await exchange.json(200, {"models": entries})


async def sim_state(sim: Simulator, exchange: Exchange) -> None:
    """`GET /_sim/state`: the simulator's introspection document (not part of Ollama)."""
    await exchange.json(200, sim.state())
