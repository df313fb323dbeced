"""Shared compute: concurrent prefills and decode steps that divide one engine's compute.

A real engine (llama.cpp, Ollama's runner) evaluates the prompts waiting in one batch
together, so eight prompts arriving at once all get their first token after about eight
prompts' worth of work, not one; and a prompt that arrives while other slots are decoding
shares each batch with their tokens. Modelled as processor sharing: while `k` evaluations are
in progress and `d` slots are decoding, each evaluation advances at rate
`1 / (1 + shared * (k - 1) + with_decode * d)`; `shared` = 1 is one compute split evenly, 0
independent evaluations (the default timing model), and `with_decode` 0 leaves decoding
slots out of it. The other way round, a decode step advances at `1 / (1 + stalls_decode * k)`:
a real engine's step that carries a prompt's tokens lasts about as long as the prompt.
Rates change whenever an evaluation starts or ends or a slot starts or stops decoding, so
each evaluation and step re-plans its remaining work then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def _sleep_at_least(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(left)


class SharedCompute:
    """The prompt evaluations in progress on one engine, and the rate each one gets."""

    def __init__(self, shared: float, with_decode: float = 0.0, stalls_decode: float = 0.0) -> None:
        self._shared = shared
        self._with_decode = with_decode
        self._stalls_decode = stalls_decode
        self._active = 0
        self._decoding = 0
        self._changed = asyncio.Event()

    @property
    def active(self) -> int:
        """Evaluations in progress."""
        return self._active

    def _rate(self) -> float:
        load = self._shared * max(self._active - 1, 0) + self._with_decode * self._decoding
        return 1 / (1 + load)

    def _notify(self) -> None:
        # Wake every evaluation that planned with the old rate; later waits use a new event.
        self._changed.set()
        self._changed = asyncio.Event()

    def decoding(self, change: int) -> None:
        """A slot started (+1) or stopped (-1) decoding."""
        self._decoding += change
        if self._with_decode and self._active:
            self._notify()

    def _step_rate(self) -> float:
        return 1 / (1 + self._stalls_decode * self._active)

    async def _run(self, work_s: float, rate: Callable[[], float]) -> None:
        left = work_s
        while left > 0:
            changed, now_rate = self._changed, rate()
            begin = time.perf_counter()
            try:
                async with asyncio.timeout(left / now_rate):
                    await changed.wait()
            except TimeoutError:
                pass
            left -= (time.perf_counter() - begin) * now_rate

    async def evaluate(self, work_s: float) -> None:
        """Return once `work_s` seconds of work (at full rate) are done, sharing the compute.

        Cancellation (a client leaving) takes the evaluation out at once.
        """
        self._active += 1
        self._notify()
        try:
            await self._run(work_s, self._rate)
        finally:
            self._active -= 1
            self._notify()

    async def step(self, work_s: float) -> None:
        """One decode step of `work_s` seconds, slowed while prompts are evaluated: at rate
        `1 / (1 + stalls_decode * k)` for `k` evaluations in progress."""
        if not self._stalls_decode:
            await _sleep_at_least(work_s)
            return
        await self._run(work_s, self._step_rate)
