"""`LlamaCppEngine`: real inference with llama.cpp (node-llama-cpp) in a supervised worker.

A runner is one llama.cpp context of `NUM_PARALLEL` sequences of `num_ctx` tokens each, so
the scheduler's slots are the context's sequences and concurrent streams are evaluated in
one batch, as in Ollama. A run renders the plain template, sends one `generate` and reads
its events: `started` (the engine's own prompt token count), `tokens`, `done`. A client that
leaves cancels its generation at once (a watcher on the `gone` event), and `close()` returns
only when the worker confirms the sequence is free. Threads default to the physical cores:
llama.cpp's own default (all logical CPUs) is about 100x slower on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from farm.sim.disconnect import unless_gone
from farm.sim.engines.base import Embedded, Job, Token
from farm.sim.engines.llamacpp import listing, template
from farm.sim.engines.llamacpp.gguf import GgufInfo, read_info
from farm.sim.engines.llamacpp.process import check_installed
from farm.sim.engines.llamacpp.protocol import (
    CancelCommand,
    CloseCommand,
    Done,
    EmbedCommand,
    Event,
    Failed,
    GenerateCommand,
    GenerateOptions,
    OpenCommand,
    Started,
    TokenizeCommand,
    Tokenized,
    Tokens,
)
from farm.sim.engines.llamacpp.protocol import (
    Embedded as EmbeddedEvent,
)
from farm.sim.engines.llamacpp.weights import SHA256, weights_path
from farm.sim.engines.llamacpp.worker_link import WorkerLink
from farm.sim.errors import RUNNER_DIED, ClientGone, RunnerFailure
from farm.sim.runner import Runner
from farm.sim.settings import SimSettings
from farm.sim.store import LocalModel

log = logging.getLogger(__name__)

LABEL = "llama.cpp (real weights: Gemma 3 270M base, CPU)"
# How long a cancelled generation may take to give its sequence back (it takes ~10 ms).
CANCEL_TIMEOUT_S = 2.0
_GONE = object()


def physical_cores() -> int:
    """Physical cores this process may use (llama.cpp is slowest with one thread per SMT)."""
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, min(physical, len(os.sched_getaffinity(0))))


@dataclass(frozen=True, slots=True)
class _Context:
    """A runner's context in the worker: the `open` command id and the worker generation."""

    ident: int
    generation: int


class LlamaCppEngine:
    """Gemma 3 270M base on llama.cpp, on the CPU (see the module docstring)."""

    synthetic = False
    gpu = False
    label = LABEL

    def __init__(self, config: SimSettings, node: str, weights: Path, info: GgufInfo) -> None:
        self._config = config
        self.weights = weights
        self.info = info
        self.threads = config.engine_threads or physical_cores()
        self._link = WorkerLink(node, str(weights), self.threads)
        self._contexts: dict[Runner, _Context] = {}

    @classmethod
    def prepare(cls, config: SimSettings) -> LlamaCppEngine:
        """Check Node and the npm packages, assemble and check the weights, read the header.

        Blocking (about 2 s on first use, 1 s later); EngineUnavailable names what is missing.
        """
        node = check_installed()
        weights = weights_path(config.weights_dir)
        return cls(config, node, weights, read_info(weights))

    def stock(self, root: Path) -> None:
        """List the real model in the store under `root` (unless `--empty-store`)."""
        if not self._config.empty_store:
            listing.install(root, self.weights, self.info)

    # ----- life --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker; the model loads in the background (about 2 s)."""
        self._link.start()

    async def close(self) -> None:
        """Stop the worker."""
        await self._link.close()

    async def load(self, runner: Runner) -> None:
        """Open the runner's context: `parallel` sequences of `num_ctx` tokens."""
        await self._open(runner)

    async def _open(self, runner: Runner) -> _Context:
        generation = await self._link.ready()
        # Registered before it is sent: an unload during the open must close it.
        context = _Context(self._link.new_id(), generation)
        self._contexts[runner] = context
        size = min(runner.options.num_ctx, self.info.arch("context_length") or 2048)
        await self._link.request(OpenCommand(context.ident, runner.parallel, size))
        return context

    def unload(self, runner: Runner) -> None:
        """Dispose the runner's context (if its worker still runs)."""
        context = self._contexts.pop(runner, None)
        if context is not None and context.generation == self._link.generation:
            self._link.post(CloseCommand(self._link.new_id(), context.ident))

    async def context_for(self, runner: Runner) -> int:
        """The runner's context id, opened again if the worker restarted since."""
        context = self._contexts.get(runner)
        if context is None or context.generation != self._link.generation:
            log.info("llama.cpp worker restarted: opening the context again")
            context = await self._open(runner)
        return context.ident

    # ----- requests ----------------------------------------------------------------------------
    def run(self, runner: Runner, job: Job, gone: asyncio.Event) -> LlamaRun:
        """A real generation in one of the runner's sequences."""
        return LlamaRun(self, runner, job, gone)

    @property
    def link(self) -> WorkerLink:
        """The worker (for runs)."""
        return self._link

    async def embed(self, runner: Runner, texts: list[str]) -> Embedded:
        """The model's pooled embeddings of `texts` (one embedding context, one at a time)."""
        await self._link.ready()
        size = min(runner.options.num_ctx, self.info.arch("context_length") or 2048)
        event = await self._link.request(EmbedCommand(self._link.new_id(), tuple(texts), size))
        if not isinstance(event, EmbeddedEvent):
            raise RunnerFailure(f"unexpected answer to embed: {event}")
        return Embedded([list(vector) for vector in event.vectors], list(event.counts))

    async def tokenize(self, model: LocalModel, text: str) -> list[int]:
        """llama.cpp's token ids of `text`, read as a prompt is (no BOS)."""
        await self._link.ready()
        event = await self._link.request(TokenizeCommand(self._link.new_id(), text))
        if not isinstance(event, Tokenized):
            raise RunnerFailure(f"unexpected answer to tokenize: {event}")
        return list(event.tokens)

    def memory_bytes(self, runner: Runner) -> int:
        """The GGUF plus the KV cache (f16 keys and values of every layer, every sequence)."""
        info = self.info
        per_token = (
            info.arch("block_count")
            * info.arch("attention.head_count_kv", 1)
            * (info.arch("attention.key_length") + info.arch("attention.value_length"))
            * 2
        )
        return self.weights.stat().st_size + runner.options.num_ctx * runner.parallel * per_token

    def describe(self) -> dict[str, Any]:
        """The `engine` object of `/_sim/state`."""
        loaded = self._link.loaded
        return {
            "name": "llama.cpp",
            "label": self.label,
            "model": listing.MODEL_NAME,
            "weights": str(self.weights),
            "sha256": SHA256,
            "chat_template": template.NAME,
            "threads": self.threads,
            "ready": self._link.is_ready,
            "worker_pid": self._link.pid,
            "worker_restarts": self._link.restarts,
            "model_load_ms": loaded.load_ms if loaded is not None else None,
            "broken": self._link.broken,
        }


def generate_options(job: Job, num_ctx: int) -> GenerateOptions:
    """The worker's options for a job. Without `num_predict` an answer is capped at `num_ctx`
    tokens: a base model may never produce its end token."""
    sampling = job.sampling
    limit = sampling.num_predict
    return GenerateOptions(
        max_tokens=num_ctx if limit < 0 else max(limit, 1),
        temperature=sampling.temperature,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        seed=sampling.seed,
        repeat_penalty=sampling.repeat_penalty,
        repeat_last_n=num_ctx if sampling.repeat_last_n < 0 else sampling.repeat_last_n,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        format=job.checked_format(),
    )


class LlamaRun:
    """One real generation (see `farm.sim.engines.base.EngineRun`)."""

    def __init__(self, engine: LlamaCppEngine, runner: Runner, job: Job, gone: asyncio.Event):
        self._engine, self._runner, self._job, self._gone = engine, runner, job, gone
        self._link = engine.link
        self._ident = self._link.new_id()
        self._queue: asyncio.Queue[Event | None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._first: Token | None = None
        self._done: Done | None = None
        self._ended = False  # done, failed or the worker died: nothing more will come
        self._finished: str | None = None

    @property
    def finished(self) -> str | None:
        """`stop` (end token, stop string, grammar complete) or `length` (token cap)."""
        return self._finished if self._first is None else None

    async def prefill(self) -> int:
        """Send the generation; wait for its first token. The engine's prompt token count."""
        options = generate_options(self._job, self._runner.options.num_ctx)
        ctx = await unless_gone(self._engine.context_for(self._runner), self._gone)
        prompt = self._job.prompt
        command = GenerateCommand(
            self._ident, ctx, template.render(prompt), prompt.context, options
        )
        self._queue = self._link.open_stream(self._ident)
        if not self._link.post(command):
            self._ended = True
            raise RunnerFailure(RUNNER_DIED)
        self._watcher = asyncio.create_task(self._watch())
        started = await self._event()
        if not isinstance(started, Started):
            raise RunnerFailure(f"unexpected first event {started}")
        self._first = await self._piece()
        return started.prompt_tokens

    async def next(self) -> Token | None:
        """The next piece, or None at the end."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._done is not None:
            return None
        return await self._piece()

    def context(self, output: str) -> tuple[int, ...]:
        """The ids of prompt and answer, as the worker evaluated them."""
        return self._done.context if self._done is not None else ()

    async def close(self) -> None:
        """Cancel the generation if it still runs and wait until the worker freed it."""
        if self._watcher is not None:
            self._watcher.cancel()
        try:
            if self._queue is not None and not self._ended:
                self._link.post(CancelCommand(self._ident))
                try:
                    async with asyncio.timeout(CANCEL_TIMEOUT_S):
                        while not self._ended:
                            await self._event(drain=True)
                except TimeoutError:
                    log.warning("generation %d: no confirmation of its cancel", self._ident)
        finally:
            self._link.close_stream(self._ident)

    async def _watch(self) -> None:
        await self._gone.wait()
        self._link.post(CancelCommand(self._ident))
        if self._queue is not None:
            self._queue.put_nowait(_GONE)  # type: ignore[arg-type]

    async def _event(self, drain: bool = False) -> Event | None:
        """The next event of this generation; raises for the client leaving or a failure."""
        if self._queue is None:
            raise RunnerFailure("the generation was never sent")
        event = await self._queue.get()
        if event is _GONE:
            if drain:
                return None
            raise ClientGone()
        if event is None or isinstance(event, Failed):
            self._ended = True
            if drain:
                return None
            raise RunnerFailure(RUNNER_DIED if event is None else event.error)
        if isinstance(event, Done):
            self._ended = True
            self._done = event
        return event

    async def _piece(self) -> Token | None:
        while True:
            event = await self._event()
            if isinstance(event, Tokens):
                return Token(event.text, count=event.count)
            if isinstance(event, Done):
                self._finished = "length" if event.reason == "length" else "stop"
                return None
