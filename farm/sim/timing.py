"""The timing model: how long a load, a prompt evaluation and one decode step take.

decode step = decode_ms * (1 + batch_slowdown * (active_slots - 1)): with continuous batching
every active slot advances one token per step, so aggregate tokens/s rises with streams while
each stream's tokens/s falls. Every duration is multiplied by a jitter factor drawn uniformly
from [1 - jitter, 1 + jitter] by a generator seeded with the configured seed.
"""

from __future__ import annotations

import random

from farm.sim.settings import SimSettings


class TimingModel:
    """Turns the configured costs into seconds to sleep; owns the seeded jitter generator."""

    def __init__(self, config: SimSettings) -> None:
        self._config = config
        self._rng = random.Random(config.seed)

    def _jitter(self, seconds: float) -> float:
        if self._config.jitter == 0 or seconds == 0:
            return seconds
        spread = self._config.jitter
        return seconds * self._rng.uniform(1 - spread, 1 + spread)

    def load_s(self) -> float:
        """How long loading a model takes."""
        return self._jitter(self._config.load_ms / 1000)

    def prefill_s(self, prompt_tokens: int) -> float:
        """How long evaluating a prompt of this many tokens takes."""
        return self._jitter(self._config.prefill_ms_per_token * prompt_tokens / 1000)

    def decode_s(self, active_slots: int) -> float:
        """How long one decode step takes while `active_slots` slots are generating."""
        slowdown = 1 + self._config.batch_slowdown * max(active_slots - 1, 0)
        return self._jitter(self._config.decode_ms * slowdown / 1000)
