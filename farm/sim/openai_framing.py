"""OpenAI-compatible wire framing: SSE chunks, completion objects, usage and error shape."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from farm.sim.errors import ApiError
from farm.sim.exchange import SSE_TYPE, Exchange, encode_json
from farm.sim.generation import RunMetrics

DONE = b"data: [DONE]\n\n"


def error_body(exc: ApiError) -> dict[str, Any]:
    """OpenAI's error object; the type follows the status."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(exc.status, "api_error")
    return {"error": {"message": exc.message, "type": kind, "param": None, "code": None}}


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

    def piece(self, text: str, thinking: bool) -> bytes:
        """One content (or reasoning) chunk."""
        if self.chat:
            delta: dict[str, Any] = {"reasoning": text} if thinking else {"content": text}
            if self._first:
                delta = {"role": "assistant", **delta}
            self._first = False
            choice = {"index": 0, "delta": delta, "finish_reason": None}
        else:
            choice = {"text": "" if thinking else text, "index": 0, "finish_reason": None}
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
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if metrics.thinking:
                message["reasoning"] = "".join(metrics.thinking)
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
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
