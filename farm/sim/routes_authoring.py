"""Model authoring routes: `POST /api/create` and `POST /api/push`.

`/api/create` follows Ollama's CreateHandler: a new model `from` a local one (pulled from the
simulated registry first when missing), with `adapters` (uploaded GGUF blobs), `template`,
`system`, `license` (added to the base's), `parameters` (merged over the base's), `messages`
and `quantize` (F16/F32 bases only) becoming layers; then one status line per layer
(`using existing layer ...` / `creating new layer ...`), `writing manifest`, `success`.
The status code is sent with the first line, so a failure before it is a plain error with
its status (400 for request errors) and a later one is an `{"error": ...}` line. The
simulator cannot parse GGUF weights, so `files` is checked and then refused.

A push always fails after `retrieving manifest`, as an unauthorised push does in Ollama.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from farm.sim import catalogue
from farm.sim.decode import Fields, json_kind, parse_body
from farm.sim.errors import ApiError, BadRequest
from farm.sim.exchange import Exchange
from farm.sim.modelfile import template_error
from farm.sim.names import ModelName
from farm.sim.progress import stream_or_last
from farm.sim.simulator import Simulator
from farm.sim.store import LAYER_TYPE, LocalModel, Store, digest_hex

Event = dict[str, Any]
# Bits per weight of the quantisations `quantize` accepts (llama.cpp's averages).
QUANT_BITS = {"F32": 32.0, "F16": 16.0, "Q8_0": 8.5, "Q4_K_M": 4.85, "Q4_K_S": 4.58}
QUANT_STEPS = 4
GGUF_MAGIC = (b"GGUF", b"FUGG")


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A decoded `/api/create` body (Go's `api.CreateRequest`)."""

    name: ModelName
    source: str
    files: dict[str, str]
    adapters: dict[str, str]
    template: str
    system: str
    licenses: tuple[str, ...]
    parameters: dict[str, Any]
    messages: tuple[dict[str, Any], ...]
    quantize: str
    stream: bool


def _file_map(fields: Fields, key: str) -> dict[str, str]:
    """`files` / `adapters`: relative paths to blob digests, checked as Ollama checks them."""
    given = fields.obj(key, "map[string]string") or {}
    for path, digest in given.items():
        if not isinstance(digest, str):
            raise BadRequest(
                f"json: cannot unmarshal {json_kind(digest)} into Go struct field "
                f"CreateRequest.{key} of type string"
            )
        parts = path.split("/")
        if path == "." or "" in parts or "." in parts or ".." in parts or set("\\:") & set(path):
            raise BadRequest(f"file path must be relative: {path}")
        if not digest:
            raise BadRequest("invalid digest format")
        try:
            digest_hex(digest)
        except BadRequest as exc:
            raise BadRequest(f"invalid digest for {path}: invalid digest format") from exc
    return dict(given)


def _licenses(value: object) -> tuple[str, ...]:
    """`license`: a string or a list of strings (Go re-decodes it into []string)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    items = value if isinstance(value, list) else None
    bad = value if items is None else next((v for v in items if not isinstance(v, str)), None)
    if items is None or bad is not None:
        target = "[]string" if items is None else "string"
        raise BadRequest(f"json: cannot unmarshal {json_kind(bad)} into Go value of type {target}")
    return tuple(items)


def _messages(fields: Fields) -> tuple[dict[str, Any], ...]:
    """`messages`: objects with string `role` (lower-cased, as api.Message does) and `content`."""
    out = []
    for message in fields.array("messages", "[]api.Message") or []:
        if not isinstance(message, dict):
            raise BadRequest(
                f"json: cannot unmarshal {json_kind(message)} into Go struct field "
                "CreateRequest.messages of type api.Message"
            )
        for key in ("role", "content"):
            if not isinstance(message.get(key, ""), str):
                raise BadRequest(
                    f"json: cannot unmarshal {json_kind(message[key])} into Go struct field "
                    f"Alias.{key} of type string"
                )
        out.append(
            {"role": str(message.get("role", "")).lower(), "content": message.get("content", "")}
        )
    return tuple(out)


def parse_create(sim: Simulator, body: bytes) -> CreateRequest:
    """Decode and check a create body in Ollama's order; `BadRequest` with its texts."""
    fields = Fields(parse_body(body, "CreateRequest"), "CreateRequest")
    name, source = fields.string("model") or fields.string("name"), fields.string("from")
    template, system, quantize = (fields.string(k) for k in ("template", "system", "quantize"))
    for accepted in ("renderer", "parser"):
        fields.string(accepted)
    stream = fields.boolean("stream") is not False
    parameters = fields.obj("parameters") or {}
    messages = _messages(fields)
    files, adapters = _file_map(fields, "files"), _file_map(fields, "adapters")
    licenses = _licenses(fields.data.get("license"))
    target = sim.parse(name)
    if source:
        sim.parse(source)
    elif not files:
        raise BadRequest("neither 'from' or 'files' was specified")
    return CreateRequest(
        target, source, files, adapters, template, system, licenses, parameters, messages,
        quantize.upper(), stream,
    )  # fmt: skip


async def create(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/create`: NDJSON progress (default) or the last object with `stream:false`."""
    request = parse_create(sim, await exchange.body())
    events = _create_events(sim, request)
    if request.stream:
        # Ollama writes the status with the first line: a failure before it keeps its code.
        first = await anext(events, None)
        events = _chain([] if first is None else [first], events)
    await stream_or_last(exchange, request.stream, events)


async def _chain(first: list[Event], rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    for event in first:
        yield event
    async for event in rest:
        yield event


async def _create_events(sim: Simulator, request: CreateRequest) -> AsyncIterator[Event]:
    store = sim.store
    if not request.source:
        for path, digest in sorted(request.files.items()):
            yield {"status": "parsing GGUF"}
            await asyncio.to_thread(_gguf_blob, store, path, digest, False)
        raise ApiError("the simulator cannot create models from GGUF files; use 'from'")
    source = sim.parse(request.source)
    base = store.get(source)
    if base is None:
        async for event in _pull(store, source):
            yield event
        base = store.get(source)
    if base is None:  # pragma: no cover - a successful pull installs it
        raise ApiError(f"model '{request.source}' not found")
    adapters = []
    if len(request.adapters) > 1:
        raise BadRequest("only one adapter is currently supported")
    for path, digest in sorted(request.adapters.items()):
        yield {"status": "parsing GGUF"}
        size = await asyncio.to_thread(_gguf_blob, store, path, digest, True)
        adapters.append(
            {"mediaType": LAYER_TYPE + "adapter", "digest": f"sha256:{digest_hex(digest)}",
             "size": size, "from": path}
        )  # fmt: skip
    layers = [{**layer, "from": base.name.display} for layer in base.layers]
    config = dict(base.config)
    statuses: dict[str, str] = {}
    if request.quantize:
        async for event in _quantize(store, base, request.quantize, layers, config, statuses):
            yield event
    layers += adapters
    await asyncio.to_thread(_text_layers, store, base, request, layers, statuses)
    for layer in layers:
        yield {"status": statuses.get(layer["digest"], f"using existing layer {layer['digest']}")}
    yield {"status": "writing manifest"}
    await asyncio.to_thread(store.write_model, request.name, config, layers)
    yield {"status": "success"}


def _gguf_blob(store: Store, path: str, digest: str, adapter: bool) -> int:
    """Check an uploaded file is a GGUF blob; its size. Adapter errors are 400s in Ollama."""
    hex_digest = digest_hex(digest)
    head = store.blob_head(hex_digest, 4)
    error = BadRequest if adapter else ApiError
    if head is None:
        raise error(f"open {store.blob_path(hex_digest)}: no such file or directory")
    if head not in GGUF_MAGIC:
        raise BadRequest("supplied file was not in GGUF format")
    return store.blob_path(hex_digest).stat().st_size


async def _pull(store: Store, name: ModelName) -> AsyncIterator[Event]:
    """What `from` a model that is not local does: pull it from the registry first."""
    yield {"status": "pulling manifest"}
    entry = catalogue.find(name)
    if entry is None:
        raise ApiError("pull model manifest: file does not exist")
    for layer in store.manifest_layers(entry):
        head = {"status": f"pulling {layer['digest'][7:19]}", "digest": layer["digest"]}
        yield {**head, "total": layer["size"], "completed": layer["size"]}
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    await asyncio.to_thread(store.install, entry, name)
    yield {"status": "success"}


async def _quantize(
    store: Store,
    base: LocalModel,
    kind: str,
    layers: list[dict[str, Any]],
    config: dict[str, Any],
    statuses: dict[str, str],
) -> AsyncIterator[Event]:
    """Replace the weights layer by a (synthetic) quantised one, with llama.cpp's progress."""
    if kind not in QUANT_BITS:
        raise ApiError(f"unsupported quantization type {kind}")
    current = str(config.get("file_type", ""))
    if current not in ("F16", "F32"):
        raise ApiError("quantization is only supported for F16 and F32 models")
    if current == kind:
        return
    index = next(i for i, layer in enumerate(layers) if layer["mediaType"] == LAYER_TYPE + "model")
    total = layers[index]["size"]
    status = f"quantizing {current} model to {kind}"
    for step in range(1, QUANT_STEPS + 1):
        yield {"status": status, "digest": "0" * 19, "total": total,
               "completed": total * step // QUANT_STEPS}  # fmt: skip
    data = f"synthetic weights: {base.name.display} quantized to {kind}\n".encode()
    layer, created = await asyncio.to_thread(store.put_blob, data, "model")
    layer["size"] = int(total * QUANT_BITS[kind] / QUANT_BITS[current])
    layers[index] = layer
    config["file_type"] = kind
    statuses[layer["digest"]] = _status(layer, created)


def _status(layer: dict[str, Any], created: bool) -> str:
    return f"{'creating new' if created else 'using existing'} layer {layer['digest']}"


def _text_layers(
    store: Store,
    base: LocalModel,
    request: CreateRequest,
    layers: list[dict[str, Any]],
    statuses: dict[str, str],
) -> None:
    """Template, system, licences, parameters and messages as layers (Ollama's set* steps)."""

    def put(kind: str, data: bytes) -> None:
        layers[:] = [layer for layer in layers if layer["mediaType"] != LAYER_TYPE + kind]
        layer, created = store.put_blob(data, kind)
        layers.append(layer)
        statuses[layer["digest"]] = _status(layer, created)

    if request.template:
        problem = template_error(request.template)
        if problem is not None:
            raise BadRequest(f"template error: {problem}")
        layers[:] = [layer for layer in layers if layer["mediaType"] != LAYER_TYPE + "prompt"]
        put("template", request.template.encode())
    if request.system:
        put("system", request.system.encode())
    for text in request.licenses:
        layer, created = store.put_blob(text.encode(), "license")
        layers.append(layer)
        statuses[layer["digest"]] = _status(layer, created)
    # The base's parameters stay unless the request sets the same key (Ollama's setParameters).
    parameters = {**base.record.parameters, **request.parameters}
    if parameters:
        put("params", _go_json(parameters))
    if request.messages:
        put("messages", _go_json(list(request.messages)))


def _go_json(value: object) -> bytes:
    """What Go's json.Encoder writes: compact, map keys sorted, a trailing newline."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode() + b"\n"


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
