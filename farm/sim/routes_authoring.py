"""Model authoring routes: `POST /api/create` (from an existing model) and `POST /api/push`.

The simulator creates models only `from` a local model (it cannot parse GGUF files, so
`files` is refused with an error line) and has no registry account to push to, so a push
fails after `retrieving manifest`, the way an unauthorised push fails in Ollama.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from farm.sim.decode import Fields, parse_body
from farm.sim.errors import ApiError, BadRequest
from farm.sim.exchange import Exchange
from farm.sim.progress import stream_or_last
from farm.sim.simulator import Simulator


async def create(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/create` with `from`: a new name for an existing model's layers."""
    fields = Fields(parse_body(await exchange.body(), "CreateRequest"), "CreateRequest")
    name = fields.string("model") or fields.string("name")
    source = fields.string("from")
    files = fields.obj("files", "map[string]string")
    stream = fields.boolean("stream") is not False
    if not name:
        raise BadRequest("model is required")
    target = sim.parse(name)
    if not source and not files:
        raise BadRequest("neither 'from' or 'files' was specified")

    async def events() -> AsyncIterator[dict[str, Any]]:
        if files:
            yield {"status": "parsing GGUF"}
            raise ApiError("the simulator cannot create models from GGUF files; use 'from'")
        model = sim.find(source)
        for layer in model.layers:
            yield {"status": f"using existing layer {layer['digest']}"}
        yield {"status": "writing manifest"}
        await asyncio.to_thread(sim.store.copy, model, target)
        yield {"status": "success"}

    await stream_or_last(exchange, stream, events())


async def push(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/push`: always unauthorised (no registry account in the simulator)."""
    fields = Fields(parse_body(await exchange.body(), "PushRequest"), "PushRequest")
    name = fields.string("model") or fields.string("name")
    stream = fields.boolean("stream") is not False
    if not name:
        raise BadRequest("model is required")
    sim.parse(name)

    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"status": "retrieving manifest"}
        raise ApiError("unauthorized: the simulated registry accepts no pushes")

    await stream_or_last(exchange, stream, events())
