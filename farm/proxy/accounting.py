"""Token counts of a finished response, read from its last bytes (`Tally`).

Ollama's final chunk carries `prompt_eval_count` and `eval_count` (its OpenAI routes a
`usage` object), so the proxy keeps only the response's tail, never the whole body. An
OpenAI stream without `stream_options.include_usage` has no usage at all; there the tally
counts `data:` events (Ollama sends one per token) and says the count is an estimate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

TAIL_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Tokens:
    """A response's token counts."""

    prompt: int
    output: int
    estimated: bool = False


class Tally:
    """Watches one response's chunks as they are relayed."""

    __slots__ = ("_kind", "_tail", "_events")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._tail = b""
        self._events = 0

    def feed(self, chunk: bytes) -> None:
        """See one chunk (cheap: a slice, and a byte count for SSE)."""
        if self._kind == "sse":
            self._events += chunk.count(b"data: {")
        tail = self._tail + chunk
        self._tail = tail[-TAIL_BYTES:] if len(tail) > TAIL_BYTES else tail

    def tokens(self) -> Tokens:
        """The counts, from the final chunk when it is there (tried from the end, line by
        line: only the last one or two lines are ever parsed)."""
        tail = self._tail
        end = len(tail)
        while end > 0:
            start = tail.rfind(b"\n", 0, end - 1) + 1
            line = tail[start:end].strip()
            if line and line != b"data: [DONE]":
                found = _counts(line.removeprefix(b"data: "))
                if found is not None:
                    return found
            end = start - 1 if start > 0 else 0
        if self._kind == "sse":
            return Tokens(0, self._events, estimated=True)
        return Tokens(0, 0, estimated=True)


def _counts(text: bytes) -> Tokens | None:
    if not text.startswith(b"{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    usage = doc.get("usage")
    if isinstance(usage, dict) and "completion_tokens" in usage:
        return Tokens(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))
    if "eval_count" in doc or "prompt_eval_count" in doc:
        return Tokens(_int(doc.get("prompt_eval_count")), _int(doc.get("eval_count")))
    return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
