"""The synthetic engine: the timing model and seeded English-looking text, no model at all.

A load sleeps `load_ms`; a prefill sleeps per prompt token (counted by `farm.sim.tokens`'
documented rule), sharing the compute with concurrent prefills when `prefill_shared` says so;
each decode step sleeps `decode_ms`, slowed by the other active slots.
Text depends only on the seed and the prompt. With a `format` the answer is a JSON text
(`farm.sim.structured.synthetic_json`) that honours it, streamed in token-sized pieces.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections.abc import Iterator
from typing import Any

from farm.sim.engines.base import Embedded, Job, Token
from farm.sim.errors import ClientGone, RunnerFailure
from farm.sim.runner import Runner
from farm.sim.settings import SimSettings
from farm.sim.sharing import SharedCompute
from farm.sim.store import LocalModel
from farm.sim.structured import FormatError, synthetic_json
from farm.sim.timing import TimingModel
from farm.sim.tokens import (
    chat_prompt_tokens,
    count_tokens,
    generate_prompt_tokens,
    natural_length,
    text_stream,
    thinking_length,
    token_ids,
)
from farm.sim.vectors import raw_vector


async def sleep_at_least(seconds: float) -> None:
    """Sleep `seconds` by the clock the metrics use: an event loop's timer may fire up to its
    resolution (1 ms with uvloop) early, and a reported duration must cover the modelled one."""
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(left)


# How many steps behind its own clock a stream may be and still catch up.
CATCH_UP_STEPS = 10
# Token-sized pieces of a JSON text; their concatenation is the text itself.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")


class SyntheticRun:
    """One synthetic generation (see `farm.sim.engines.base.EngineRun`)."""

    def __init__(
        self,
        config: SimSettings,
        timing: TimingModel,
        runner: Runner,
        job: Job,
        gone: asyncio.Event,
        sharing: SharedCompute | None = None,
    ) -> None:
        self._config, self._timing, self._runner = config, timing, runner
        self._sharing = sharing
        self._decoding = False
        self._job, self._gone = job, gone
        prompt = job.prompt
        if prompt.messages is None:
            self._count = generate_prompt_tokens(prompt.prompt, prompt.system)
            self._count += len(prompt.context)  # detokenised and put in front, as in Ollama
            self._key = f"{prompt.system}\x00{prompt.prompt}"
        else:
            contents = [message.content for message in prompt.messages]
            self._count = chat_prompt_tokens(contents)
            self._key = "\x00".join(contents)
        sampling = job.sampling
        self._seed = config.seed if sampling.seed is None else sampling.seed
        low, high = config.token_range
        self._natural = natural_length(self._seed, self._key, low, high)
        self._source: Iterator[str] = text_stream(self._seed, self._key)
        self._thoughts = thinking_length(self._seed, self._key) if job.think else 0
        self._think_source = text_stream(self._seed, "thinking\x00" + self._key)
        self._made = 0
        self._step_end: float | None = None

    @property
    def finished(self) -> str | None:
        """`stop` once the drawn answer length (or the whole JSON text) is out."""
        return "stop" if self._made >= self._natural + self._thoughts else None

    async def prefill(self) -> int:
        """Sleep the prompt's evaluation time; a `format` fixes the answer text here."""
        fmt = self._job.checked_format()
        if fmt is not None:
            self._structured(fmt)
        work_s = self._timing.prefill_s(self._count)
        if self._sharing is None:
            await sleep_at_least(work_s)
        else:
            await self._sharing.evaluate(work_s)
            self._sharing.decoding(+1)  # from now on this slot's tokens share the batches
            self._decoding = True
        return self._count

    def _structured(self, fmt: str | dict[str, Any]) -> None:
        # Different prompts get different instances; the same seed and prompt the same one.
        seed = zlib.crc32(f"{self._seed}\x00{self._key}".encode())
        try:
            text = synthetic_json(fmt, seed)
        except FormatError as exc:
            raise RunnerFailure(exc.message) from exc
        pieces = _PIECE.findall(text)
        self._natural = len(pieces)
        self._source = iter(pieces)

    async def next(self) -> Token:
        """One decode step: sleep, then the next word, mark or reasoning piece."""
        step_s = self._timing.decode_s(self._runner.slots.active)
        now = time.perf_counter()
        # Steps follow the engine's own clock: this step starts when the last one ended, so
        # the time spent writing a token (a few ms on a busy host) is not added to every step
        # (a calibrated profile, `farm.sim.profile`, would count it twice), and a late wake-up
        # is made up by the next steps. A stream that fell far behind (a reader that stopped
        # reading) starts afresh instead of bursting out what it missed.
        last = self._step_end
        start = last if last is not None and now - last < CATCH_UP_STEPS * step_s else now
        self._step_end = start + step_s
        if self._sharing is None:
            await sleep_at_least(self._step_end - time.perf_counter())
        else:
            await self._sharing.step(self._step_end - time.perf_counter())
            # A step stretched by prompt evaluations ends when it ends: no catching up on it.
            self._step_end = max(self._step_end, time.perf_counter())
        if self._gone.is_set():
            raise ClientGone()
        self._made += 1
        if self._made <= self._thoughts:
            return Token(next(self._think_source), thinking=True)
        return Token(next(self._source))

    def context(self, output: str) -> tuple[int, ...]:
        """Stable synthetic ids of the earlier context, the system + prompt and the answer."""
        prompt = self._job.prompt
        ids = [*prompt.context, *token_ids(prompt.system + prompt.prompt), *token_ids(output)]
        return tuple(ids)

    async def close(self) -> None:
        """Nothing runs in the background; the slot stops counting as decoding."""
        if self._decoding and self._sharing is not None:
            self._decoding = False
            self._sharing.decoding(-1)


class SyntheticEngine:
    """The model-free engine (see the module docstring)."""

    synthetic = True
    label = "synthetic"
    gpu = True

    def __init__(self, config: SimSettings) -> None:
        self._config = config
        self.timing = TimingModel(config)
        # Only a profile that measured shared prompt evaluation pays for the bookkeeping.
        shared, with_decode = config.prefill_shared, config.prefill_decode_shared
        stalls = config.decode_prefill_stall
        wanted = shared or with_decode or stalls
        self.sharing = SharedCompute(shared, with_decode, stalls) if wanted else None

    def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to stop."""

    async def load(self, runner: Runner) -> None:
        """Sleep the configured load time."""
        await sleep_at_least(self.timing.load_s())

    def unload(self, runner: Runner) -> None:
        """Nothing to free."""

    def run(self, runner: Runner, job: Job, gone: asyncio.Event) -> SyntheticRun:
        """A synthetic generation."""
        return SyntheticRun(self._config, self.timing, runner, job, gone, self.sharing)

    async def embed(self, runner: Runner, texts: list[str]) -> Embedded:
        """Deterministic vectors; the evaluation time is charged per input token."""
        counts = [1 + count_tokens(text) for text in texts]
        await asyncio.sleep(self.timing.prefill_s(sum(counts)))
        model = runner.model
        width = int(model.config.get("embedding_length", 384))
        return Embedded([raw_vector(model.name.display, text, width) for text in texts], counts)

    async def tokenize(self, model: LocalModel, text: str) -> list[int]:
        """The synthetic ids of the documented counting rule."""
        return token_ids(text)

    def memory_bytes(self, runner: Runner) -> int:
        """The claimed weights size plus a KV cache estimate."""
        return runner.memory_bytes()

    def describe(self) -> dict[str, Any]:
        """`{"name": "synthetic", "label": "synthetic"}`."""
        return {"name": "synthetic", "label": self.label}
