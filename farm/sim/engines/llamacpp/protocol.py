"""The worker's wire lines: typed commands to `worker.js` and the events it answers with.

One JSON object per line in each direction (the header of worker.js lists them). Every
command carries an `id`; every event but `fatal` names the command it answers. Commands
encode, events decode; a line that is not a known event raises `ValueError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class LoadCommand:
    """Load the GGUF with `threads` CPU threads (the first line, once)."""

    id: int
    path: str
    threads: int

    def encode(self) -> bytes:
        """The stdin line."""
        return _line({"cmd": "load", "id": self.id, "path": self.path, "threads": self.threads})


@dataclass(frozen=True, slots=True)
class OpenCommand:
    """Create a context of `sequences` sequences of `context_size` tokens each."""

    id: int
    sequences: int
    context_size: int

    def encode(self) -> bytes:
        """The stdin line."""
        return _line(
            {
                "cmd": "open",
                "id": self.id,
                "sequences": self.sequences,
                "context_size": self.context_size,
            }
        )


@dataclass(frozen=True, slots=True)
class CloseCommand:
    """Dispose the context opened by command `ctx`."""

    id: int
    ctx: int

    def encode(self) -> bytes:
        """The stdin line."""
        return _line({"cmd": "close", "id": self.id, "ctx": self.ctx})


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """Sampling and the token cap, in Ollama's option names.

    Stop strings stay on the Python side (the generation loop cuts the text and cancels): a
    stop trigger inside node-llama-cpp holds text back and drops it when the cap is reached.
    """

    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    seed: int | None
    repeat_penalty: float
    repeat_last_n: int
    presence_penalty: float
    frequency_penalty: float
    format: str | dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """The `options` object of a generate command."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "seed": self.seed,
            "repeat_penalty": self.repeat_penalty,
            "repeat_last_n": self.repeat_last_n,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "format": self.format,
        }


@dataclass(frozen=True, slots=True)
class GenerateCommand:
    """One completion of `prefix` token ids + `prompt` text on a free sequence of `ctx`."""

    id: int
    ctx: int
    prompt: str
    prefix: tuple[int, ...]
    options: GenerateOptions

    def encode(self) -> bytes:
        """The stdin line."""
        return _line(
            {
                "cmd": "generate",
                "id": self.id,
                "ctx": self.ctx,
                "prompt": self.prompt,
                "prefix": list(self.prefix),
                "options": self.options.as_json(),
            }
        )


@dataclass(frozen=True, slots=True)
class CancelCommand:
    """Abort generation `id` (its `done` event follows with reason `abort`)."""

    id: int

    def encode(self) -> bytes:
        """The stdin line."""
        return _line({"cmd": "cancel", "id": self.id})


@dataclass(frozen=True, slots=True)
class TokenizeCommand:
    """The token ids of `text`, as a prompt is read (no BOS)."""

    id: int
    text: str

    def encode(self) -> bytes:
        """The stdin line."""
        return _line({"cmd": "tokenize", "id": self.id, "text": self.text})


@dataclass(frozen=True, slots=True)
class EmbedCommand:
    """Embed `texts` with an embedding context of `context_size` tokens."""

    id: int
    texts: tuple[str, ...]
    context_size: int

    def encode(self) -> bytes:
        """The stdin line."""
        return _line(
            {
                "cmd": "embed",
                "id": self.id,
                "texts": list(self.texts),
                "context_size": self.context_size,
            }
        )


@dataclass(frozen=True, slots=True)
class ShutdownCommand:
    """Abort everything and exit."""

    id: int

    def encode(self) -> bytes:
        """The stdin line."""
        return _line({"cmd": "shutdown", "id": self.id})


Command = (
    LoadCommand
    | OpenCommand
    | CloseCommand
    | GenerateCommand
    | CancelCommand
    | TokenizeCommand
    | EmbedCommand
    | ShutdownCommand
)


@dataclass(frozen=True, slots=True)
class Loaded:
    """The model is loaded; `load_ms` as the worker measured it."""

    id: int
    load_ms: int
    threads: int
    model_bytes: int


@dataclass(frozen=True, slots=True)
class Opened:
    """A context is ready."""

    id: int


@dataclass(frozen=True, slots=True)
class Closed:
    """A context is disposed."""

    id: int


@dataclass(frozen=True, slots=True)
class Started:
    """A generation took its sequence; the engine evaluates `prompt_tokens` tokens."""

    id: int
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Tokens:
    """`count` more tokens whose text is `text` (possibly empty: part of a character)."""

    id: int
    count: int
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """A generation ended (`stop`, `length` or `abort`); `context`: prompt + answer ids."""

    id: int
    reason: str
    context: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Tokenized:
    """The answer to a tokenize command."""

    id: int
    tokens: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Embedded:
    """Raw vectors and token counts, one per text."""

    id: int
    vectors: tuple[tuple[float, ...], ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    """Command `id` failed; `error` is the engine's message."""

    id: int
    error: str


@dataclass(frozen=True, slots=True)
class Fatal:
    """The worker cannot go on; it exits after this line."""

    error: str


Event = Loaded | Opened | Closed | Started | Tokens | Done | Tokenized | Embedded | Failed | Fatal


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(value) for value in values)


def decode_event(line: bytes) -> Event:
    """Parse one stdout line of worker.js."""
    try:
        obj = json.loads(line)
        kind = obj["event"]
        if kind == "tokens":
            return Tokens(int(obj["id"]), int(obj["count"]), str(obj["text"]))
        if kind == "started":
            return Started(int(obj["id"]), int(obj["prompt_tokens"]))
        if kind == "done":
            return Done(int(obj["id"]), str(obj["reason"]), _ints(obj.get("context", ())))
        if kind == "opened":
            return Opened(int(obj["id"]))
        if kind == "closed":
            return Closed(int(obj["id"]))
        if kind == "tokenized":
            return Tokenized(int(obj["id"]), _ints(obj["tokens"]))
        if kind == "embedded":
            vectors = tuple(tuple(float(v) for v in row) for row in obj["vectors"])
            return Embedded(int(obj["id"]), vectors, _ints(obj["counts"]))
        if kind == "loaded":
            info = obj["info"]
            return Loaded(
                int(obj["id"]),
                int(info["load_ms"]),
                int(info["threads"]),
                int(info["model_bytes"]),
            )
        if kind == "failed":
            return Failed(int(obj["id"]), str(obj["error"]))
        if kind == "fatal":
            return Fatal(str(obj["error"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"bad worker line: {line[:200]!r}") from exc
    raise ValueError(f"unknown worker event {kind!r}")
