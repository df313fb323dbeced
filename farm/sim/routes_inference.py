"""Native inference routes: `POST /api/generate` and `POST /api/chat`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farm.sim.decode import Fields, json_kind, parse_body
from farm.sim.durations import keep_alive_from_json
from farm.sim.engines.base import Message, PromptInput
from farm.sim.errors import ApiError, BadRequest
from farm.sim.exchange import JSON_TYPE, NDJSON_TYPE, Exchange, encode_json
from farm.sim.frames import NativeChunk
from farm.sim.generation import RunMetrics
from farm.sim.inference import Plan, serve
from farm.sim.options import parse_options
from farm.sim.simulator import Simulator
from farm.sim.stamps import utc_now
from farm.sim.store import LocalModel


@dataclass(slots=True)
class NativeFraming:
    """NDJSON framing of generate (`response`) or chat (`message`) chunks."""

    model: str
    chat: bool
    content_type: str = NDJSON_TYPE
    json_type: str = JSON_TYPE

    def piece(self, text: str, thinking: bool) -> bytes:
        """`{"model","created_at","response"|"message",["thinking"],"done":false}` + newline."""
        chunk = NativeChunk(
            self.model,
            utc_now(),
            self.chat,
            text="" if thinking else text,
            thinking=text if thinking else "",
        )
        return encode_json(chunk.encode()) + b"\n"

    def _done(self, metrics: RunMetrics, text: str, thinking: str = "") -> NativeChunk:
        return NativeChunk(
            self.model,
            utc_now(),
            self.chat,
            text=text,
            thinking=thinking,
            done=True,
            done_reason=metrics.done_reason,
            context=metrics.context,
            metrics=metrics.final(),
        )

    def final(self, metrics: RunMetrics) -> bytes:
        """The `done:true` chunk with the six metrics (and generate's `context`)."""
        return encode_json(self._done(metrics, "").encode()) + b"\n"

    def whole(self, metrics: RunMetrics) -> dict[str, Any]:
        """`stream:false`: the final chunk with all text concatenated."""
        return self._done(metrics, "".join(metrics.output), "".join(metrics.thinking)).encode()

    def error_line(self, message: str) -> bytes:
        """`{"error": ...}` after the stream began."""
        return encode_json({"error": message}) + b"\n"

    async def error(self, exchange: Exchange, exc: ApiError) -> None:
        """A JSON error with the real status."""
        await exchange.error(exc.status, exc.message)


def _format_and_logprobs(fields: Fields) -> object:
    """`format` as sent (the engine checks it after scheduling, as Ollama's runner does)."""
    top = fields.integer("top_logprobs")
    if top is not None and not 0 <= top <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20")
    return fields.data.get("format")


def _options(sim: Simulator, fields: Fields, model: LocalModel) -> tuple[Any, Any]:
    return parse_options(fields.obj("options"), sim.config.context_length, sim.model_params(model))


def _decode_think(fields: Fields) -> bool | str | None:
    """`think` as decoded (bad values fail at decode time, before any model look-up)."""
    think = fields.data.get("think")
    if isinstance(think, str) and think not in ("low", "medium", "high", "max"):
        levels = '"low", "medium", "high", "max", true, or false'
        raise BadRequest(f'invalid think value: "{think}" (must be {levels})')
    if think is not None and not isinstance(think, bool | str):
        raise BadRequest("think must be a boolean or string")
    return think


def _thinks(think: bool | str | None, model: LocalModel, sent: str) -> bool:
    """True when the answer starts with reasoning.

    Thinking-capable models think when the field is omitted (Ollama's current default).
    """
    if think is None:
        return "thinking" in model.capabilities
    if think is False:
        return False
    if "thinking" not in model.capabilities:
        raise BadRequest(f'"{sent}" does not support thinking')
    return True


async def generate(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/generate`."""
    start = exchange.received_ns
    fields = Fields(parse_body(await exchange.body(), "GenerateRequest"), "GenerateRequest")
    sent = fields.string("model")
    prompt, system, template = (
        fields.string("prompt"),
        fields.string("system"),
        fields.string("template"),
    )
    stream, raw = fields.boolean("stream"), fields.boolean("raw")
    keep_alive, think_field = (
        keep_alive_from_json(fields.data.get("keep_alive")),
        _decode_think(fields),
    )
    context = fields.array("context", "[]int")
    suffix = fields.string("suffix")
    fmt = _format_and_logprobs(fields)
    model = sim.find(sent, empty_is_404=True)
    previous = _context_ids(context)
    if raw and (template or system or context):
        raise BadRequest("raw mode does not support template, system, or context")
    if "completion" not in model.capabilities:
        raise BadRequest(f'"{sent}" does not support generate')
    if suffix and "insert" not in model.capabilities:
        raise BadRequest(f'"{sent}" does not support insert')
    think = _thinks(think_field, model, sent)
    runner_options, sampling = _options(sim, fields, model)
    if not prompt and not fields.data.get("images"):
        await _load_or_unload(
            sim, exchange, sent, model, runner_options, keep_alive, {"response": ""}
        )
        return
    plan = Plan(
        start_ns=start,
        model=model,
        runner_options=runner_options,
        sampling=sampling,
        keep_alive_s=keep_alive,
        # A deprecated `context` goes in front of the prompt; raw replies carry none.
        prompt=PromptInput(
            prompt=prompt,
            # The model's SYSTEM is the default (raw mode has no template to put it in).
            system=system or ("" if raw else model.record.system),
            raw=raw is True,
            context=tuple(previous),
            wants_context=raw is not True,
        ),
        stream=stream is not False,
        think=think,
        format=fmt,
    )
    await serve(sim, exchange, plan, NativeFraming(sent, chat=False))


def _context_ids(context: list[Any] | None) -> list[int]:
    ids = []
    for item in context or []:
        if isinstance(item, bool) or not isinstance(item, int):
            raise BadRequest(
                f"json: cannot unmarshal {json_kind(item)} into Go struct field "
                "GenerateRequest.context of type int"
            )
        ids.append(item)
    return ids


def _messages(fields: Fields) -> list[Message]:
    messages = fields.array("messages", "[]api.Message") or []
    decoded: list[Message] = []
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest(
                f"json: cannot unmarshal {json_kind(message)} into Go struct field "
                "ChatRequest.messages of type api.Message"
            )
        part = Fields(message, "ChatRequest.messages")
        decoded.append(Message(part.string("role"), part.string("content")))
    return decoded


def _with_model_messages(model: LocalModel, messages: list[Message]) -> tuple[Message, ...]:
    """The model's MESSAGEs before the request's, and its SYSTEM first unless one is sent."""
    record = model.record
    seeded = [Message(str(m.get("role", "")), str(m.get("content", ""))) for m in record.messages]
    merged = seeded + messages
    system = record.system
    if system and (not messages or messages[0].role != "system"):
        merged.insert(0, Message("system", system))
    return tuple(merged)


async def chat(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/chat`."""
    start = exchange.received_ns
    fields = Fields(parse_body(await exchange.body(), "ChatRequest"), "ChatRequest")
    sent = fields.string("model")
    stream = fields.boolean("stream")
    keep_alive, think_field = (
        keep_alive_from_json(fields.data.get("keep_alive")),
        _decode_think(fields),
    )
    messages = _messages(fields)
    tools = fields.array("tools", "api.Tools")
    fmt = _format_and_logprobs(fields)
    model = sim.find(sent)
    if "completion" not in model.capabilities:
        raise BadRequest(f'"{sent}" does not support chat')
    if tools and "tools" not in model.capabilities:
        full = f"{model.name.host}/{model.name.namespace}/{model.name.model}:{model.name.tag}"
        raise BadRequest(f"{full} does not support tools")
    think = _thinks(think_field, model, sent)
    runner_options, sampling = _options(sim, fields, model)
    if not messages:
        empty = {"message": {"role": "assistant", "content": ""}}
        await _load_or_unload(sim, exchange, sent, model, runner_options, keep_alive, empty)
        return
    plan = Plan(
        start_ns=start,
        model=model,
        runner_options=runner_options,
        sampling=sampling,
        keep_alive_s=keep_alive,
        prompt=PromptInput(messages=_with_model_messages(model, messages)),
        stream=stream is not False,
        think=think,
        format=fmt,
    )
    await serve(sim, exchange, plan, NativeFraming(sent, chat=True))


async def _load_or_unload(
    sim: Simulator,
    exchange: Exchange,
    sent: str,
    model: LocalModel,
    runner_options: Any,
    keep_alive: float | None,
    empty: dict[str, Any],
) -> None:
    """The empty-prompt special cases: one JSON object, `done_reason` load or unload."""
    if keep_alive == 0:
        sim.scheduler.request_unload(model)
        reason = "unload"
    else:
        await sim.load_only(model, runner_options, keep_alive, exchange.gone)
        reason = "load"
    body = {"model": sent, "created_at": utc_now(), **empty, "done": True, "done_reason": reason}
    await exchange.json(200, body)
