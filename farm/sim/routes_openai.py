"""OpenAI-compatible routes (`/v1/*`): thin adapters over the native inference path.

Requests become a native `Plan`, so scheduling, 503s and cancellation are the native ones.
`stream` defaults to false; streams are SSE (`data: <json>`) ending with `data: [DONE]`;
errors use OpenAI's shape with the type chosen by status.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from farm.sim.decode import Fields, parse_body
from farm.sim.engines.base import Message, PromptInput
from farm.sim.errors import ApiError, BadRequest, NotFound, RunnerFailure
from farm.sim.exchange import PLAIN_JSON_TYPE, Exchange
from farm.sim.inference import Plan, serve
from farm.sim.openai_framing import SseFraming, error_body
from farm.sim.options import Sampling, parse_options
from farm.sim.routes_embed import compute
from farm.sim.simulator import Simulator
from farm.sim.structured import FormatError, format_from_response_format

Handler = Callable[[Simulator, Exchange], Awaitable[None]]


def openai_errors(handler: Handler) -> Handler:
    """Answer ApiErrors raised before the first byte in OpenAI's shape."""

    async def wrapped(sim: Simulator, exchange: Exchange) -> None:
        try:
            await handler(sim, exchange)
        except ApiError as exc:
            if exchange.started:
                raise
            await exchange.json(exc.status, error_body(exc))

    wrapped.__doc__ = handler.__doc__
    return wrapped


def _content(value: object) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict):
                raise BadRequest("invalid message content type")
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if not isinstance(url, str) or not url.startswith("data:"):
                    raise BadRequest("invalid image input")
            else:
                raise BadRequest("invalid message format")
        return "".join(texts)
    raise BadRequest(f"invalid message content type: {type(value).__name__}")


# OpenAI request fields that become native float options (Ollama's /v1 adapter).
_FLOAT_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def _sampling(fields: Fields, sim: Simulator, model: Any) -> tuple[Any, Sampling]:
    options: dict[str, Any] = {}
    if fields.data.get("max_tokens") is not None:
        options["num_predict"] = fields.integer("max_tokens")
    if fields.data.get("seed") is not None:
        options["seed"] = fields.integer("seed")
    for name in _FLOAT_FIELDS:
        if fields.data.get(name) is not None:
            options[name] = fields.number(name)
    stop = fields.data.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif stop is not None:
        options["stop"] = fields.strings("stop")
    return parse_options(options, sim.config.context_length, sim.model_params(model))


def _openai_think(fields: Fields, model: Any) -> bool:
    """Reasoning on for thinking models unless `reasoning_effort` is "none"."""
    effort = fields.data.get("reasoning_effort")
    reasoning = fields.obj("reasoning") or {}
    effort = effort if effort is not None else reasoning.get("effort")
    return "thinking" in model.capabilities and effort != "none"


def _format(fields: Fields) -> object:
    """`response_format` as a native `format` (json_object → "json", json_schema → the schema)."""
    try:
        return format_from_response_format(fields.data.get("response_format"))
    except FormatError as exc:
        raise RunnerFailure(exc.message) from exc


def _message(value: object) -> Message:
    if not isinstance(value, dict):
        return Message("user", _content(None))
    role = value.get("role")
    return Message(role if isinstance(role, str) else "user", _content(value.get("content")))


def _include_usage(fields: Fields) -> bool:
    stream_options = fields.obj("stream_options") or {}
    return bool(stream_options.get("include_usage"))


@openai_errors
async def chat_completions(sim: Simulator, exchange: Exchange) -> None:
    """`POST /v1/chat/completions`."""
    start = exchange.received_ns
    fields = Fields(
        parse_body(await exchange.body(), "ChatCompletionRequest"), "ChatCompletionRequest"
    )
    sent = fields.string("model")
    messages = fields.array("messages", "[]openai.Message") or []
    if not messages:
        raise BadRequest("[] is too short - 'messages'")
    decoded = tuple(_message(m) for m in messages)
    model = sim.find(sent)
    runner_options, sampling = _sampling(fields, sim, model)
    plan = Plan(
        start_ns=start,
        model=model,
        runner_options=runner_options,
        sampling=sampling,
        keep_alive_s=None,
        prompt=PromptInput(messages=decoded),
        stream=fields.boolean("stream") is True,
        think=_openai_think(fields, model),
        format=_format(fields),
    )
    await serve(
        sim, exchange, plan, SseFraming(sent, chat=True, include_usage=_include_usage(fields))
    )


@openai_errors
async def completions(sim: Simulator, exchange: Exchange) -> None:
    """`POST /v1/completions` (`prompt` must be a string)."""
    start = exchange.received_ns
    fields = Fields(parse_body(await exchange.body(), "CompletionRequest"), "CompletionRequest")
    sent = fields.string("model")
    prompt = fields.data.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string")
    model = sim.find(sent)
    runner_options, sampling = _sampling(fields, sim, model)
    plan = Plan(
        start_ns=start,
        model=model,
        runner_options=runner_options,
        sampling=sampling,
        keep_alive_s=None,
        prompt=PromptInput(prompt=prompt),
        stream=fields.boolean("stream") is True,
        format=_format(fields),
    )
    await serve(
        sim, exchange, plan, SseFraming(sent, chat=False, include_usage=_include_usage(fields))
    )


def _model_object(sim: Simulator, model: Any, ident: str) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "model",
        "created": int(model.modified_at),
        "owned_by": model.name.namespace,
    }


@openai_errors
async def models(sim: Simulator, exchange: Exchange) -> None:
    """`GET /v1/models` (`"data": null` when no model is present, as Ollama does)."""
    data = [_model_object(sim, m, m.name.display) for m in sim.store.models()]
    await exchange.json(200, {"object": "list", "data": data or None}, PLAIN_JSON_TYPE)


@openai_errors
async def model(sim: Simulator, exchange: Exchange) -> None:
    """`GET /v1/models/{model}`."""
    ident = exchange.path.removeprefix("/v1/models/")
    try:
        found = sim.find(ident)
    except (NotFound, BadRequest) as exc:
        raise NotFound(f'model "{ident}" not found') from exc
    await exchange.json(200, _model_object(sim, found, ident), PLAIN_JSON_TYPE)


@openai_errors
async def embeddings(sim: Simulator, exchange: Exchange) -> None:
    """`POST /v1/embeddings` (float or base64 encoding)."""
    start = exchange.received_ns
    fields = Fields(parse_body(await exchange.body(), "EmbedRequest"), "EmbedRequest")
    sent = fields.string("model")
    raw = fields.data.get("input")
    if raw == "":
        texts = [""]
    elif isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        texts = list(raw)
    else:
        raise BadRequest("invalid input")
    encoding = fields.string("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest(f"invalid encoding format: {encoding}")
    found = sim.find(sent)
    vectors, metrics = await compute(
        sim, exchange, found, texts, fields, fields.integer("dimensions"), True, start
    )
    data = []
    for index, vector in enumerate(vectors):
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "embedding": value, "index": index})
    tokens = metrics.prompt_eval_count
    body = {
        "object": "list",
        "data": data,
        "model": sent,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    await exchange.json(200, body, PLAIN_JSON_TYPE)
