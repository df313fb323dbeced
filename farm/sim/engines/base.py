"""The engine seam: what the server hands an engine (`Job`) and what it gets back (`Token`s).

A run goes prefill → tokens → end. The generation loop (`farm.sim.generation`) drives it:
`prefill()` evaluates the prompt and returns how many tokens the engine evaluated; `next()`
returns the next piece of text (one or more tokens) or None once the engine ended by itself
(`finished` then says why: `stop` or `length`); `close()` stops a run that is still going and
returns only once its sequence is free again, so the scheduler never hands out a busy slot.
A run notices its client leaving (the `gone` event) itself and raises `ClientGone`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from farm.sim.errors import RunnerFailure
from farm.sim.options import Sampling
from farm.sim.runner import Runner
from farm.sim.store import LocalModel
from farm.sim.structured import FormatError, validate_format

Format = str | dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as the template sees it."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class PromptInput:
    """What the client asked the model to continue: a generate prompt or a chat.

    `messages` is None for generate (`prompt`, `system`, `raw`, the deprecated `context`
    ids) and the conversation for chat.
    """

    prompt: str = ""
    system: str = ""
    raw: bool = False
    context: tuple[int, ...] = ()
    messages: tuple[Message, ...] | None = None
    # Whether the reply carries generate's `context` (not for raw mode, nor for chat).
    wants_context: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """One generation: the prompt, the sampling options and the output format as sent."""

    prompt: PromptInput
    sampling: Sampling
    format: object = None
    think: bool = False

    def checked_format(self) -> Format:
        """`"json"`, a schema or None; a bad one fails the run (Ollama's runner: a 500)."""
        try:
            return validate_format(self.format)
        except FormatError as exc:
            raise RunnerFailure(exc.message) from exc


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of output: `count` tokens whose text is `text` (reasoning when `thinking`)."""

    text: str
    thinking: bool = False
    count: int = 1


@dataclass(frozen=True, slots=True)
class Embedded:
    """Raw (un-normalised) vectors, one per input, and each input's token count."""

    vectors: list[list[float]]
    counts: list[int]


class EngineRun(Protocol):
    """One generation in one slot (see the module docstring for its life)."""

    @property
    def finished(self) -> str | None:
        """`stop` or `length` once the engine ended the answer by itself, else None."""
        ...

    async def prefill(self) -> int:
        """Evaluate the prompt; the number of prompt tokens evaluated."""
        ...

    async def next(self) -> Token | None:
        """The next piece, or None when the engine ended (see `finished`)."""
        ...

    def context(self, output: str) -> tuple[int, ...]:
        """Generate's `context`: the token ids of prompt and answer (`output` is the text)."""
        ...

    async def close(self) -> None:
        """Stop the run if it still goes; return once its sequence is free."""
        ...


class Engine(Protocol):
    """What the scheduler and the routes need from an engine."""

    #: True only for the synthetic engine (the proxy's `/_health` labels it from this).
    synthetic: bool
    #: How it presents itself everywhere ("synthetic", "llama.cpp (real weights: ...)").
    label: str
    #: Whether `/api/ps` shows the memory as VRAM (the synthetic engine pretends a GPU).
    gpu: bool

    def start(self) -> None:
        """Start background parts (a worker process) at server start (in the running loop)."""
        ...

    async def close(self) -> None:
        """Stop them at server shutdown."""
        ...

    async def load(self, runner: Runner) -> None:
        """Make `runner` ready to serve `runner.parallel` sequences of `num_ctx` each."""
        ...

    def unload(self, runner: Runner) -> None:
        """Free what `load` took (returns at once; the freeing may finish later)."""
        ...

    def run(self, runner: Runner, job: Job, gone: asyncio.Event) -> EngineRun:
        """A generation in one of `runner`'s slots (the caller holds the slot)."""
        ...

    async def embed(self, runner: Runner, texts: list[str]) -> Embedded:
        """Embed `texts` in one slot of `runner`."""
        ...

    async def tokenize(self, model: LocalModel, text: str) -> list[int]:
        """The token ids of `text` as this engine reads a prompt (no BOS)."""
        ...

    def memory_bytes(self, runner: Runner) -> int:
        """What `/api/ps` reports as the runner's size."""
        ...

    def describe(self) -> dict[str, Any]:
        """The `engine` object of `/_sim/state`."""
        ...
