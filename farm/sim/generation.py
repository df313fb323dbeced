"""One inference run inside a slot, for any engine: prefill, then piece by piece to the end.

The loop drives an `EngineRun` and records the durations it really spent around the engine
(monotonic clock), so the final chunk's metrics are ground truth. Stop strings are honoured
with hold-back (text that may be the start of a stop string is not sent yet), `num_predict`
ends with `length`, the engine's own end with its reason. Injected faults (`--fail-after-
tokens`, `--stall-after-tokens`) apply to every engine. Leaving the loop early, also by
`aclose()`, closes the run, which frees its sequence before the slot is given back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from farm.sim.engines.base import EngineRun, Job
from farm.sim.errors import RUNNER_DIED, ClientGone, RunnerFailure
from farm.sim.frames import Metrics
from farm.sim.settings import SimSettings


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
    context: tuple[int, ...] | None = None

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
    """Produces the pieces of one answer from an engine run, while the caller holds a slot."""

    def __init__(
        self,
        *,
        config: SimSettings,
        run: EngineRun,
        job: Job,
        metrics: RunMetrics,
        gone: asyncio.Event,
    ) -> None:
        self._config = config
        self._run = run
        self._job = job
        self.metrics = metrics
        self._gone = gone

    async def pieces(self) -> AsyncGenerator[tuple[bool, str]]:
        """Yield (is_thinking, text) pieces; sets `metrics` as it goes.

        Raises ClientGone / RunnerFailure; the run is closed however the loop ends.
        """
        try:
            async for piece in self._pieces():
                yield piece
        finally:
            await self._run.close()
        # After close: a real engine's last word (its `done`) may follow our own stop.
        if self._job.prompt.wants_context:
            self.metrics.context = self._run.context("".join(self.metrics.output))

    async def _pieces(self) -> AsyncIterator[tuple[bool, str]]:
        metrics, run = self.metrics, self._run
        begin = time.perf_counter_ns()
        metrics.prompt_eval_count = await run.prefill()
        metrics.prompt_eval_ns = time.perf_counter_ns() - begin
        if self._gone.is_set():
            raise ClientGone()
        limit, stops = self._job.sampling.num_predict, self._job.sampling.stop
        held = ""
        eval_start = time.perf_counter_ns()
        while True:
            if run.finished is not None:
                metrics.done_reason = run.finished
                break
            if 0 <= limit <= metrics.eval_count:
                metrics.done_reason = "length"
                break
            await self._fault_point(metrics.eval_count)
            token = await run.next()
            if token is None:
                continue  # `finished` says why
            metrics.eval_count += token.count
            metrics.eval_ns = time.perf_counter_ns() - eval_start
            if token.thinking:
                metrics.thinking.append(token.text)
                yield True, token.text
                continue
            held += token.text
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
        # `>=`: a real engine may deliver several tokens in one piece.
        fail, stall = self._config.fail_after_tokens, self._config.stall_after_tokens
        if fail is not None and tokens_so_far >= fail:
            raise RunnerFailure(RUNNER_DIED)
        if stall is not None and tokens_so_far >= stall:
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
