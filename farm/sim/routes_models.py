"""Model management routes: show, copy, delete, pull (simulated registry) and blobs."""

from __future__ import annotations

import asyncio
from typing import Any

from farm.sim import catalogue
from farm.sim.decode import Fields, parse_body
from farm.sim.errors import ApiError, BadRequest, ClientGone, NotFound
from farm.sim.exchange import Exchange
from farm.sim.progress import stream_or_last
from farm.sim.simulator import Simulator
from farm.sim.stamps import local_stamp
from farm.sim.store import LocalModel, digest_hex

PULL_STEPS = 8


def _model_field(fields: Fields) -> str:
    """`model`, or the legacy `name` key."""
    return fields.string("model") or fields.string("name")


def show_body(model: LocalModel) -> dict[str, Any]:
    """The `/api/show` document (Go struct order; empty fields left out).

    A real model's config carries its GGUF metadata (`model_info`) and the name of the chat
    template the engine applies (`chat_template`); a synthetic one gets a made-up minimum.
    """
    arch = model.config.get("model_family", "")
    info = model.config.get("model_info") or {
        "general.architecture": arch,
        "general.parameter_count": model.config.get("parameter_count", 0),
        f"{arch}.context_length": model.config.get("context_length", 0),
        f"{arch}.embedding_length": model.config.get("embedding_length", 0),
        "tokenizer.ggml.model": "synthetic",
    }
    fields = model.record.show_fields(model.name.display)
    said = model.config.get("chat_template")
    if said:
        fields["modelfile"] = f"# chat template: {said}\n" + fields["modelfile"]
    body: dict[str, Any] = {
        **fields,
        "details": model.details(),
        "model_info": info,
        "capabilities": list(model.capabilities),
        "modified_at": local_stamp(model.modified_at),
    }
    return {key: value for key, value in body.items() if value not in ("", None, [])}


async def show(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/show`."""
    fields = Fields(parse_body(await exchange.body(), "ShowRequest"), "ShowRequest")
    fields.boolean("verbose")
    name = _model_field(fields)
    if not name:
        raise BadRequest("model is required")
    await exchange.json(200, show_body(sim.find(name)))


async def copy(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/copy`: 200 with an empty body."""
    fields = Fields(parse_body(await exchange.body(), "CopyRequest"), "CopyRequest")
    source, destination = fields.string("source"), fields.string("destination")
    if not source or not destination:
        raise BadRequest("source and destination are required")
    src_name = sim.parse(source, f'source "{source}" is invalid')
    dst_name = sim.parse(destination, f'destination "{destination}" is invalid')
    model = sim.store.get(src_name)
    if model is None:
        raise NotFound(f'model "{source}" not found')
    await asyncio.to_thread(sim.store.copy, model, dst_name)
    await exchange.respond(200, b"", None)


async def delete(sim: Simulator, exchange: Exchange) -> None:
    """`DELETE /api/delete`: 200 with an empty body; unreferenced blobs are pruned."""
    fields = Fields(parse_body(await exchange.body(), "DeleteRequest"), "DeleteRequest")
    name = _model_field(fields)
    if not name:
        raise BadRequest("model is required")
    parsed = sim.parse(name)
    model = sim.store.get(parsed)
    if model is None:
        raise NotFound(f"model '{name}' not found")
    await asyncio.to_thread(sim.store.delete, model)
    await exchange.respond(200, b"", None)


async def _pull_events(sim: Simulator, sent: str, gone: asyncio.Event) -> Any:
    """Yield pull progress objects; an unknown model raises after `pulling manifest`."""
    yield {"status": "pulling manifest"}
    await asyncio.sleep(sim.config.pull_ms / 1000 / (PULL_STEPS + 2))
    name = sim.parse(sent)
    entry = catalogue.find(name)
    local = sim.store.get(name)
    if entry is None and local is not None and local.config.get("weights_source"):
        # An engine's own model (its weights came with a package): present and up to date.
        yield {"status": "verifying sha256 digest"}
        yield {"status": "success"}
        return
    if entry is None:
        raise ApiError("pull model manifest: file does not exist")
    step_s = sim.config.pull_ms / 1000 / (PULL_STEPS + 2)
    for layer in sim.store.manifest_layers(entry):
        hex_digest = layer["digest"].split(":", 1)[1]
        head = {"status": f"pulling {hex_digest[:12]}", "digest": layer["digest"]}
        yield {**head, "total": layer["size"]}
        steps = PULL_STEPS if layer["size"] > 1_000_000 else 1
        for step in range(1, steps + 1):
            await asyncio.sleep(step_s if steps > 1 else 0)
            if gone.is_set():
                raise ClientGone()
            yield {**head, "total": layer["size"], "completed": layer["size"] * step // steps}
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    await asyncio.to_thread(sim.store.install, entry, name)
    yield {"status": "success"}


async def pull(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/pull`: NDJSON progress (default) or the last object with `stream:false`."""
    fields = Fields(parse_body(await exchange.body(), "PullRequest"), "PullRequest")
    fields.boolean("insecure")
    stream = fields.boolean("stream") is not False
    name = _model_field(fields)
    if not name:
        raise BadRequest("model is required")
    sim.parse(name)
    await stream_or_last(exchange, stream, _pull_events(sim, name, exchange.gone))


def _blob_digest(exchange: Exchange) -> str:
    return digest_hex(exchange.path.removeprefix("/api/blobs/"))


async def blob_head(sim: Simulator, exchange: Exchange) -> None:
    """`HEAD /api/blobs/:digest`: 200 if present, else 404 (no body either way)."""
    try:
        hex_digest = _blob_digest(exchange)
    except BadRequest:
        await exchange.respond(400, b"", None)
        return
    status = 200 if sim.store.blob_path(hex_digest).exists() else 404
    await exchange.respond(status, b"", None)


async def blob_post(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/blobs/:digest`: stream the body to disk, 201 created / 200 present."""
    hex_digest = _blob_digest(exchange)
    if sim.store.blob_path(hex_digest).exists():
        await exchange.respond(200, b"", None)
        return
    created = await sim.store.write_blob(hex_digest, exchange.body_chunks())
    await exchange.respond(201 if created else 200, b"", None)
