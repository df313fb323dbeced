"""Read-only routes: `/`, `/api/version`, `/api/tags`, `/api/ps`, and the `/_sim/*` witnesses."""

from __future__ import annotations

from typing import Any

from farm.sim.decode import Fields, parse_body
from farm.sim.exchange import TEXT_TYPE, Exchange
from farm.sim.memory import vram_split
from farm.sim.simulator import Simulator
from farm.sim.stamps import local_stamp
from farm.sim.store import LocalModel

# The Ollama release whose API the simulator mirrors; clients check it against their minimum.
OLLAMA_VERSION = "0.33.0"


async def root(sim: Simulator, exchange: Exchange) -> None:
    """`GET|HEAD /`: the liveness text."""
    await exchange.respond(200, b"Ollama is running", TEXT_TYPE)


async def version(sim: Simulator, exchange: Exchange) -> None:
    """`GET|HEAD /api/version`; a real engine also says which (`engine`, not in Ollama)."""
    body = {"version": OLLAMA_VERSION}
    if not sim.engine.synthetic:
        body["engine"] = sim.engine.label
    await exchange.json(200, body)


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


def vram_bytes(sim: Simulator) -> int | None:
    """The simulated GPU's memory in bytes; None: unlimited; 0 for a CPU engine."""
    if not sim.engine.gpu:
        return 0
    mib = sim.config.vram_mib
    return None if mib is None else mib * 2**20


async def ps(sim: Simulator, exchange: Exchange) -> None:
    """`GET /api/ps`: loaded (and loading) runners, latest `expires_at` first.

    `size_vram` is each runner's share of the simulated GPU, placed in load order
    (`farm.sim.memory.vram_split`): below `size` when the model spills onto the CPU."""
    runners = sim.scheduler.runners()
    sizes = [sim.engine.memory_bytes(runner) for runner in runners]
    placed = vram_split(sizes, vram_bytes(sim))
    rows = sorted(
        zip(runners, sizes, placed, strict=True),
        key=lambda row: row[0].ps_expires_at(),
        reverse=True,
    )
    entries = []
    for runner, memory, in_vram in rows:
        model = runner.model
        entries.append(
            {
                "name": model.name.display,
                "model": model.name.display,
                "size": memory,
                "digest": model.digest,
                "details": _details(model),
                "expires_at": local_stamp(runner.ps_expires_at()),
                "size_vram": in_vram,
                "context_length": runner.options.num_ctx,
            }
        )
    await exchange.json(200, {"models": entries})


async def sim_state(sim: Simulator, exchange: Exchange) -> None:
    """`GET /_sim/state`: the simulator's introspection document (not part of Ollama)."""
    await exchange.json(200, sim.state())


async def sim_tokenize(sim: Simulator, exchange: Exchange) -> None:
    """`POST /_sim/tokenize {"model", "text"}`: the engine's token ids of a text, without BOS.

    Not part of Ollama: the witness for `prompt_eval_count` (BOS + the tokens of the prompt as
    the template renders it).
    """
    fields = Fields(parse_body(await exchange.body(), "TokenizeRequest"), "TokenizeRequest")
    model = sim.find(fields.string("model"))
    tokens = await sim.engine.tokenize(model, fields.string("text"))
    await exchange.json(200, {"model": model.name.display, "tokens": tokens})
