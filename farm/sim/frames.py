"""Native wire frames: one generate/chat NDJSON chunk, with its encode/decode pair.

Field order follows Ollama's Go structs and zero values are left out (`omitempty`): the
`thinking`, `done_reason`, `context` and every zero metric disappear rather than read 0 or "".
The simulator writes its own frames and shares no code with the proxy's parser on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from farm.sim.errors import BadRequest


@dataclass(frozen=True, slots=True)
class Metrics:
    """The six final-chunk metrics; durations in nanoseconds."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0

    def encode(self) -> dict[str, int]:
        """Non-zero metrics in Ollama's order."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: value for name, value in values if value}

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> Metrics:
        """Read the metrics of a final chunk (missing means 0)."""
        return cls(**{f.name: int(obj.get(f.name, 0)) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class NativeChunk:
    """One `/api/generate` (`response`) or `/api/chat` (`message`) object."""

    model: str
    created_at: str
    chat: bool
    text: str = ""
    thinking: str = ""
    done: bool = False
    done_reason: str = ""
    context: tuple[int, ...] | None = None
    metrics: Metrics = Metrics()

    def encode(self) -> dict[str, Any]:
        """The JSON object, in Go struct order, zero values omitted."""
        body: dict[str, Any] = {"model": self.model, "created_at": self.created_at}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": self.text}
            if self.thinking:
                message["thinking"] = self.thinking
            body["message"] = message
        else:
            body["response"] = self.text
            if self.thinking:
                body["thinking"] = self.thinking
        body["done"] = self.done
        if self.done_reason:
            body["done_reason"] = self.done_reason
        if self.context:
            body["context"] = list(self.context)
        body.update(self.metrics.encode())
        return body

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> NativeChunk:
        """Parse a chunk object (as a client would); malformed input raises BadRequest."""
        try:
            chat = "message" in obj
            source = obj["message"] if chat else obj
            return cls(
                model=str(obj["model"]),
                created_at=str(obj["created_at"]),
                chat=chat,
                text=str(source.get("content" if chat else "response", "")),
                thinking=str(source.get("thinking", "")),
                done=bool(obj["done"]),
                done_reason=str(obj.get("done_reason", "")),
                context=tuple(obj["context"]) if "context" in obj else None,
                metrics=Metrics.decode(obj),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise BadRequest(f"malformed chunk: {exc}") from exc
