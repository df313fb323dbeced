"""Serving one inference request: slot, generation, and the wire framing of its output.

Shared by the native and the OpenAI-compatible routes, which differ only in their `Framing`,
and by every engine: the run comes from `sim.engine`.
The status line goes out with the first piece of text (Ollama writes nothing before the first
token); an error before that is a normal error response, after it an in-band error line.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from farm.sim.engines.base import Job, PromptInput
from farm.sim.errors import ApiError, ClientGone
from farm.sim.exchange import Exchange
from farm.sim.generation import Generation, RunMetrics
from farm.sim.options import Sampling
from farm.sim.runner import RunnerOptions
from farm.sim.simulator import Simulator
from farm.sim.store import LocalModel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    """A decoded, validated inference request."""

    start_ns: int
    model: LocalModel
    runner_options: RunnerOptions
    sampling: Sampling
    keep_alive_s: float | None
    prompt: PromptInput
    stream: bool
    think: bool = False
    format: object = None

    @property
    def job(self) -> Job:
        """What the engine runs."""
        return Job(self.prompt, self.sampling, self.format, self.think)


class Framing(Protocol):
    """How one API family writes pieces, the final chunk, whole replies and errors."""

    content_type: str
    json_type: str

    def piece(self, text: str, thinking: bool) -> bytes:
        """One streamed piece of text (or reasoning), framed (NDJSON line or SSE event)."""
        ...

    def final(self, metrics: RunMetrics) -> bytes:
        """The end of a stream (final chunk, usage, `[DONE]` ...)."""
        ...

    def whole(self, metrics: RunMetrics) -> dict[str, Any]:
        """The single object of a non-streamed reply."""
        ...

    def error_line(self, message: str) -> bytes:
        """An in-band error after the stream started."""
        ...

    async def error(self, exchange: Exchange, exc: ApiError) -> None:
        """An error before the first byte, with its real status."""
        ...


async def serve(sim: Simulator, exchange: Exchange, plan: Plan, framing: Framing) -> None:
    """Run the plan and write its output; counts the request as finished/cancelled/failed."""
    metrics = RunMetrics(start_ns=plan.start_ns)
    sim.stats.started += 1
    gone = exchange.gone
    job = plan.job
    try:
        async with sim.slot(
            plan.model, plan.runner_options, plan.keep_alive_s, gone, metrics
        ) as runner:
            run = sim.engine.run(runner, job, gone)
            generation = Generation(config=sim.config, run=run, job=job, metrics=metrics, gone=gone)
            # aclosing: however the stream ends, the run is closed (its sequence freed) before
            # the slot is given back.
            async with aclosing(generation.pieces()) as pieces:
                if plan.stream:
                    async for thinking, text in pieces:
                        if not exchange.started:
                            await exchange.start(200, framing.content_type, None)
                        await exchange.chunk(framing.piece(text, thinking))
                    if not exchange.started:
                        await exchange.start(200, framing.content_type, None)
                    await exchange.chunk(framing.final(metrics))
                    await exchange.end()
                else:
                    async for _ in pieces:
                        pass
                    await exchange.json(200, framing.whole(metrics), framing.json_type)
        sim.stats.finished += 1
    except ClientGone:
        sim.stats.cancelled += 1
        log.info("client went away; request abandoned after %d tokens", metrics.eval_count)
    except ApiError as exc:
        sim.stats.failed += 1
        if exchange.started:
            await exchange.chunk(framing.error_line(exc.message))
            await exchange.end()
        else:
            await framing.error(exchange, exc)
