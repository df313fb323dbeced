"""Stream chunks as the benchmark reads them: one typed `Chunk` per Ollama NDJSON line or
OpenAI-style SSE `data:` line, decoded at the boundary.

This decoder is the benchmark's own: it shares no code with the proxy or the simulator, so a
bug in their serialisers cannot hide behind a mirror-image bug here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.errors import WireError


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Ollama's own accounting from the final chunk (missing fields are 0: Ollama omits zeros)."""

    eval_count: int = 0
    eval_duration_ns: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration_ns: int = 0
    load_duration_ns: int = 0
    total_duration_ns: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """One decoded stream event: text pieces, end marker, in-band error and final stats."""

    content: str = ""
    thinking: str = ""
    done: bool = False
    error: str | None = None
    done_reason: str | None = None
    created_at: str | None = None
    stats: ServerStats | None = None

    @property
    def has_text(self) -> bool:
        """True when the chunk carries visible or thinking text (what counts as a token)."""
        return bool(self.content or self.thinking)


def _int(obj: dict[str, Any], key: str) -> int:
    """An integer metric that Ollama may omit (omitempty) or a proxy may mangle."""
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"field {key!r} must be an integer, got {value!r}")
    return value


def _object(line: bytes | str) -> dict[str, Any]:
    """Parse a JSON object or raise WireError with the start of the offending line."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise WireError(f"not JSON: {str(line)[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise WireError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def decode_ndjson(line: bytes | str) -> Chunk:
    """Decode one Ollama `/api/generate` or `/api/chat` NDJSON line."""
    obj = _object(line)
    if "error" in obj:
        return Chunk(error=str(obj["error"]), done=False)
    message = obj.get("message")
    if isinstance(message, dict):
        content = message.get("content") or ""
        thinking = message.get("thinking") or ""
    else:
        content = obj.get("response") or ""
        thinking = obj.get("thinking") or ""
    done = obj.get("done") is True
    stats = None
    if done:
        stats = ServerStats(
            eval_count=_int(obj, "eval_count"),
            eval_duration_ns=_int(obj, "eval_duration"),
            prompt_eval_count=_int(obj, "prompt_eval_count"),
            prompt_eval_duration_ns=_int(obj, "prompt_eval_duration"),
            load_duration_ns=_int(obj, "load_duration"),
            total_duration_ns=_int(obj, "total_duration"),
        )
    return Chunk(
        content=str(content),
        thinking=str(thinking),
        done=done,
        done_reason=obj.get("done_reason"),
        created_at=obj.get("created_at"),
        stats=stats,
    )


def decode_sse(line: bytes | str) -> Chunk | None:
    """Decode one SSE line of `/v1/chat/completions` or `/v1/completions`.

    Returns None for lines that carry no event (blank separators, comments, `event:`/`id:`).
    `data: [DONE]` is the end marker; the usage-only chunk supplies the server token counts.
    """
    text = line.decode() if isinstance(line, bytes) else line
    text = text.rstrip("\r\n")
    if not text.startswith("data:"):
        return None
    data = text[5:].strip()
    if data == "[DONE]":
        return Chunk(done=True)
    obj = _object(data)
    if "error" in obj:
        err = obj["error"]
        return Chunk(error=str(err.get("message") if isinstance(err, dict) else err))
    content, thinking, reason = "", "", None
    choices = obj.get("choices") or []
    if choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content") or ""
            thinking = delta.get("reasoning") or delta.get("reasoning_content") or ""
        else:
            content = choice.get("text") or ""
        reason = choice.get("finish_reason")
    stats = None
    usage = obj.get("usage")
    if isinstance(usage, dict) and not choices:
        stats = ServerStats(
            eval_count=_int(usage, "completion_tokens"),
            prompt_eval_count=_int(usage, "prompt_tokens"),
        )
    return Chunk(content=str(content), thinking=str(thinking), done_reason=reason, stats=stats)
