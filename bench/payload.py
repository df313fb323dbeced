"""Request payloads: the exact body and path each prompt becomes on the native or OpenAI API.

Options are pinned (temperature 0, a seed, `num_predict`) so every target gets the same work and,
on a real model, the same tokens back; `num_ctx` is never sent because changing it reloads the
model mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.prompts import Prompt


@dataclass(frozen=True, slots=True)
class Payload:
    """An HTTP request for one prompt: path, JSON body and the stream framing to expect."""

    path: str
    body: dict[str, Any]
    framing: str  # "ndjson" or "sse"


def build_payload(prompt: Prompt, *, api: str, model: str, max_tokens: int, seed: int) -> Payload:
    """The request for `prompt` on `api` ("ollama" native NDJSON or "openai" SSE)."""
    if api == "openai":
        body: dict[str, Any] = {
            "model": model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": seed,
        }
        if prompt.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in prompt.messages]
            return Payload("/v1/chat/completions", body, "sse")
        body["prompt"] = prompt.text
        return Payload("/v1/completions", body, "sse")
    options = {"num_predict": max_tokens, "temperature": 0, "seed": seed}
    if prompt.messages is not None:
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        body = {"model": model, "messages": messages, "stream": True, "options": options}
        return Payload("/api/chat", body, "ndjson")
    body = {"model": model, "prompt": prompt.text, "stream": True, "options": options}
    return Payload("/api/generate", body, "ndjson")
