"""The timing model: how long a load, a prompt evaluation and one decode step take.

decode step = decode_ms * (1 + batch_slowdown * (active_slots - 1) ** batch_exponent), or a
measured `decode_curve` when one is set: with continuous batching every active slot advances
one token per step, so aggregate tokens/s rises with streams while each stream's tokens/s
falls. A prompt evaluation is `prefill_base_ms + prefill_ms_per_token * tokens` of work
(plus, when a calibration measured stalls, an exponential extra time of mean
`prefill_delay_ms + prefill_stall * work`);
with `prefill_shared` > 0 concurrent evaluations share one compute (`farm.sim.sharing`), as a
real engine evaluates the prompts of one batch together, and with `prefill_decode_shared` > 0
the decoding slots slow them too (their tokens share the batches), and with
`decode_prefill_stall` > 0 the evaluations in progress slow the decode steps in turn. Every
duration is multiplied by a jitter factor drawn uniformly from [1 - jitter, 1 + jitter] by a
generator seeded with the configured seed.

`TimingParams` is the pure, jitter-free form (means), for planners that derive capacity
analytically from the same settings the simulator runs with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from farm.sim.curve import Curve, curve_ms, parse_curve
from farm.sim.settings import SimSettings


@dataclass(frozen=True, slots=True)
class TimingParams:
    """The timing settings as numbers, with the model's mean durations in seconds."""

    load_ms: float
    prefill_base_ms: float
    prefill_ms_per_token: float
    prefill_delay_ms: float
    prefill_stall: float
    prefill_shared: float
    prefill_decode_shared: float
    decode_prefill_stall: float
    decode_ms: float
    batch_slowdown: float
    batch_exponent: float
    decode_curve: Curve
    jitter: float

    @classmethod
    def from_settings(cls, config: SimSettings) -> TimingParams:
        """The timing model of these settings (a profile's values included)."""
        return cls(
            load_ms=config.load_ms,
            prefill_base_ms=config.prefill_base_ms,
            prefill_ms_per_token=config.prefill_ms_per_token,
            prefill_delay_ms=config.prefill_delay_ms,
            prefill_stall=config.prefill_stall,
            prefill_shared=config.prefill_shared,
            prefill_decode_shared=config.prefill_decode_shared,
            decode_prefill_stall=config.decode_prefill_stall,
            decode_ms=config.decode_ms,
            batch_slowdown=config.batch_slowdown,
            batch_exponent=config.batch_exponent,
            decode_curve=parse_curve(config.decode_curve),
            jitter=config.jitter,
        )

    def load_s(self) -> float:
        """How long loading a model takes."""
        return self.load_ms / 1000

    def prefill_work_s(self, prompt_tokens: int) -> float:
        """One prompt's mean evaluation time when it has the compute to itself."""
        work_ms = self.prefill_base_ms + self.prefill_ms_per_token * prompt_tokens
        return (work_ms * (1 + self.prefill_stall) + self.prefill_delay_ms) / 1000

    def prefill_s(self, prompt_tokens: int, together: int = 1, decoding: int = 0) -> float:
        """One prompt's evaluation time while `together` equal prompts are evaluated at once
        and `decoding` other slots are generating."""
        share = 1 + self.prefill_shared * max(together - 1, 0)
        share += self.prefill_decode_shared * decoding
        return self.prefill_work_s(prompt_tokens) * share

    def step_s(self, active_slots: int, evaluating: int = 0) -> float:
        """One decode step (each stream's time per output token) with this many slots held,
        while `evaluating` prompts are being evaluated."""
        stretch = 1 + self.decode_prefill_stall * evaluating
        if self.decode_curve:
            return curve_ms(self.decode_curve, max(active_slots, 1)) / 1000 * stretch
        extra = max(active_slots - 1, 0)
        growth = self.batch_slowdown * extra**self.batch_exponent if extra else 0.0
        return self.decode_ms * (1 + growth) / 1000 * stretch

    def ttft_s(
        self, prompt_tokens: int, active_slots: int, together: int = 1, decoding: int = 0
    ) -> float:
        """Time to the first token with the model loaded: evaluation, then one decode step."""
        return self.prefill_s(prompt_tokens, together, decoding) + self.step_s(active_slots)

    def answer_s(
        self, prompt_tokens: int, output_tokens: int, active_slots: int, together: int = 1
    ) -> float:
        """A whole answer of `output_tokens` tokens with the model loaded."""
        steps = max(output_tokens - 1, 0) * self.step_s(active_slots)
        return self.ttft_s(prompt_tokens, active_slots, together) + steps


class TimingModel:
    """Turns the configured costs into seconds to sleep; owns the seeded jitter generator."""

    def __init__(self, config: SimSettings) -> None:
        self.params = TimingParams.from_settings(config)
        self._rng = random.Random(config.seed)

    def _jitter(self, seconds: float) -> float:
        spread = self.params.jitter
        if spread == 0 or seconds == 0:
            return seconds
        return seconds * self._rng.uniform(1 - spread, 1 + spread)

    def load_s(self) -> float:
        """How long loading a model takes."""
        return self._jitter(self.params.load_s())

    def prefill_s(self, prompt_tokens: int) -> float:
        """The work of evaluating a prompt of this many tokens (alone on the compute)."""
        params = self.params
        work_ms = params.prefill_base_ms + params.prefill_ms_per_token * prompt_tokens
        work_s = self._jitter(work_ms / 1000)
        stall_ms = params.prefill_delay_ms + params.prefill_stall * work_ms
        if stall_ms > 0:
            work_s += self._rng.expovariate(1000 / stall_ms)
        return work_s

    def decode_s(self, active_slots: int) -> float:
        """How long one decode step takes while `active_slots` slots are generating."""
        return self._jitter(self.params.step_s(active_slots))
