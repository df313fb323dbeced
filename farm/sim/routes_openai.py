"""OpenAI-compatible routes (`/v1/*`): thin adapters over the native inference path (§3.15).

Requests become a native `Plan`, so scheduling, 503s and cancellation are the native ones.
`stream` defaults to false; streams are SSE (`data: <json>`) ending with `data: [DONE]`;
errors use OpenAI's shape with the type chosen by status.
"""

from __future__ import annotations

import base64
import random
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from farm.sim.decode import Fields, parse_body
from farm.sim.errors import ApiError, BadRequest, NotFound
from farm.sim.exchange import SSE_TYPE, Exchange, encode_json
from farm.sim.generation import RunMetrics
from farm.sim.inference import Plan, serve
from farm.sim.options import Sampling, parse_options
from farm.sim.routes_embed import compute
from farm.sim.simulator import Simulator
from farm.sim.tokens import chat_prompt_tokens, generate_prompt_tokens

Handler = Callable[[Simulator, Exchange], Awaitable[None]]
DONE = b"data: [DONE]\n\n"


def error_body(exc: ApiError) -> dict[str, Any]:
    """OpenAI's error object; the type follows the status."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(exc.status, "api_error")
    return {"error": {"message": exc.message, "type": kind, "param": None, "code": None}}


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


@dataclass(slots=True)
class SseFraming:
    """SSE framing of chat completion chunks (`chat=True`) or text completion chunks."""

    model: str
    chat: bool
    include_usage: bool
    ident: str = field(default_factory=lambda: str(random.randint(0, 998)))
    created: int = field(default_factory=lambda: int(time.time()))
    content_type: str = SSE_TYPE
    _first: bool = True

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        prefix, kind = (
            ("chatcmpl-", "chat.completion") if self.chat else ("cmpl-", "text_completion")
        )
        body = {
            "id": prefix + self.ident,
            "object": kind + ".chunk" if self.chat else kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_ollama",
            "choices": choices,
        }
        body.update(extra)
        return body

    @staticmethod
    def _event(body: dict[str, Any]) -> bytes:
        return b"data: " + encode_json(body) + b"\n\n"

    def _zero_usage(self) -> dict[str, Any]:
        # Quirk of /v1/completions with include_usage: every chunk carries zero usage.
        if self.include_usage and not self.chat:
            return {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
        return {}

    def piece(self, text: str) -> bytes:
        """One content chunk."""
        if self.chat:
            delta: dict[str, Any] = {"content": text}
            if self._first:
                delta = {"role": "assistant", "content": text}
            self._first = False
            choice = {"index": 0, "delta": delta, "finish_reason": None}
        else:
            choice = {"text": text, "index": 0, "finish_reason": None}
        return self._event(self._chunk([choice], **self._zero_usage()))

    def final(self, metrics: RunMetrics) -> bytes:
        """The finish chunk, the optional usage chunk and `[DONE]`."""
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if self._first else {}
            choice = {"index": 0, "delta": delta, "finish_reason": metrics.done_reason}
        else:
            choice = {"text": "", "index": 0, "finish_reason": metrics.done_reason}
        out = self._event(self._chunk([choice], **self._zero_usage()))
        if self.include_usage:
            out += self._event(self._chunk([], usage=usage(metrics)))
        return out + DONE

    def whole(self, metrics: RunMetrics) -> dict[str, Any]:
        """The non-streamed completion object."""
        text = "".join(metrics.output)
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": metrics.done_reason,
            }
        else:
            choice = {"text": text, "index": 0, "finish_reason": metrics.done_reason}
        body = self._chunk([choice], usage=usage(metrics))
        body["object"] = "chat.completion" if self.chat else "text_completion"
        return body

    def error_line(self, message: str) -> bytes:
        """An in-band error event after the stream started."""
        return self._event(error_body(ApiError(message)))

    async def error(self, exchange: Exchange, exc: ApiError) -> None:
        """An error before the first byte, in OpenAI's shape."""
        await exchange.json(exc.status, error_body(exc))


def usage(metrics: RunMetrics) -> dict[str, int]:
    """OpenAI usage from the native counts."""
    prompt, completion = metrics.prompt_eval_count, metrics.eval_count
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


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


def _sampling(fields: Fields, sim: Simulator, model: Any) -> tuple[Any, Sampling]:
    options: dict[str, Any] = {}
    if fields.data.get("max_tokens") is not None:
        options["num_predict"] = fields.integer("max_tokens")
    if fields.data.get("seed") is not None:
        options["seed"] = fields.integer("seed")
    stop = fields.data.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif stop is not None:
        options["stop"] = fields.strings("stop")
    return parse_options(options, sim.config.context_length, sim.model_params(model))


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
    contents = [_content(m.get("content") if isinstance(m, dict) else None) for m in messages]
    model = sim.find(sent)
    runner_options, sampling = _sampling(fields, sim, model)
    plan = Plan(
        start_ns=start,
        model=model,
        runner_options=runner_options,
        sampling=sampling,
        keep_alive_s=None,
        prompt_tokens=chat_prompt_tokens(contents),
        prompt_key="\x00".join(contents),
        stream=fields.boolean("stream") is True,
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
        prompt_tokens=generate_prompt_tokens(prompt),
        prompt_key=f"\x00{prompt}",
        stream=fields.boolean("stream") is True,
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
    await exchange.json(200, {"object": "list", "data": data or None})


@openai_errors
async def model(sim: Simulator, exchange: Exchange) -> None:
    """`GET /v1/models/{model}`."""
    ident = exchange.path.removeprefix("/v1/models/")
    try:
        found = sim.find(ident)
    except (NotFound, BadRequest) as exc:
        raise NotFound(f'model "{ident}" not found') from exc
    await exchange.json(200, _model_object(sim, found, ident))


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
    await exchange.json(200, body)
