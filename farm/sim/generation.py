"""One simulated inference run inside a slot: prefill, then token by token decode.

The run yields text pieces as they become ready and records the durations it really spent
(monotonic clock), so the final chunk's metrics are ground truth. Stop strings are honoured
with hold-back (text that may be the start of a stop string is not sent yet), `num_predict`
ends with `length`, the model's natural end with `stop`. The client leaving is noticed at the
next token boundary; injected faults fail or stall after a number of tokens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from farm.sim.errors import ClientGone, RunnerFailure
from farm.sim.frames import Metrics
from farm.sim.options import Sampling
from farm.sim.runner import Runner
from farm.sim.settings import SimSettings
from farm.sim.timing import TimingModel
from farm.sim.tokens import natural_length, text_stream, thinking_length

RUNNER_DIED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)


@dataclass(slots=True)
class RunMetrics:
    """What the final chunk reports; nanoseconds from `time.perf_counter_ns`."""

    start_ns: int
    loaded_ns: int = 0
    prompt_eval_count: int = 0
    prompt_eval_ns: int = 0
    eval_count: int = 0
    eval_ns: int = 0
    done_reason: str = "stop"
    output: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)

    def final(self) -> Metrics:
        """The final chunk's metrics; `total_duration` ends now."""
        return Metrics(
            total_duration=time.perf_counter_ns() - self.start_ns,
            load_duration=self.loaded_ns - self.start_ns,
            prompt_eval_count=self.prompt_eval_count,
            prompt_eval_duration=self.prompt_eval_ns,
            eval_count=self.eval_count,
            eval_duration=self.eval_ns,
        )


class Generation:
    """Produces the pieces of one answer while holding a slot of `runner`."""

    def __init__(
        self,
        *,
        config: SimSettings,
        timing: TimingModel,
        runner: Runner,
        metrics: RunMetrics,
        prompt_key: str,
        sampling: Sampling,
        gone: asyncio.Event,
        think: bool = False,
    ) -> None:
        self._config = config
        self._timing = timing
        self._runner = runner
        self.metrics = metrics
        self._key = prompt_key
        self._sampling = sampling
        self._gone = gone
        self._think = think

    async def pieces(self) -> AsyncIterator[tuple[bool, str]]:
        """Yield (is_thinking, text) pieces; sets `metrics` as it goes.

        A thinking model first reasons for a while (`thinking` pieces, counted in
        `eval_count` and `num_predict`), then answers. Raises ClientGone / RunnerFailure.
        """
        metrics = self.metrics
        begin = time.perf_counter_ns()
        await asyncio.sleep(self._timing.prefill_s(metrics.prompt_eval_count))
        metrics.prompt_eval_ns = time.perf_counter_ns() - begin
        if self._gone.is_set():
            raise ClientGone()
        seed = self._config.seed if self._sampling.seed is None else self._sampling.seed
        low, high = self._config.token_range
        natural = natural_length(seed, self._key, low, high)
        limit = self._sampling.num_predict
        stops = self._sampling.stop
        source = text_stream(seed, self._key)
        held = ""
        thoughts = thinking_length(seed, self._key) if self._think else 0
        think_source = text_stream(seed, "thinking\x00" + self._key)
        eval_start = time.perf_counter_ns()
        while True:
            if metrics.eval_count >= natural + thoughts:
                metrics.done_reason = "stop"
                break
            if 0 <= limit <= metrics.eval_count:
                metrics.done_reason = "length"
                break
            await self._fault_point(metrics.eval_count)
            await asyncio.sleep(self._timing.decode_s(self._runner.slots.active))
            if self._gone.is_set():
                raise ClientGone()
            metrics.eval_count += 1
            metrics.eval_ns = time.perf_counter_ns() - eval_start
            if metrics.eval_count <= thoughts:
                thought = next(think_source)
                metrics.thinking.append(thought)
                yield True, thought
                continue
            held += next(source)
            cut = _first_stop(held, stops)
            if cut is not None:
                held = held[:cut]
                metrics.done_reason = "stop"
                break
            keep = _held_back(held, stops)
            ready, held = held[: len(held) - keep], held[len(held) - keep :]
            if ready:
                metrics.output.append(ready)
                yield False, ready
        if held:
            metrics.output.append(held)
            yield False, held

    async def _fault_point(self, tokens_so_far: int) -> None:
        if self._config.fail_after_tokens == tokens_so_far:
            raise RunnerFailure(RUNNER_DIED)
        if self._config.stall_after_tokens == tokens_so_far:
            # A hung runner: nothing more is produced; only the client leaving ends it.
            await self._gone.wait()
            raise ClientGone()


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [text.find(stop) for stop in stops if stop and stop in text]
    return min(found) if found else None


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters could still grow into a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    return longest
