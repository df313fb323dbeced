"""The probe design: which prompts and answer lengths, at which concurrency, how often.

Three series, each answering one question of the timing model:

- `load`: a cold load after an unload, `loads` times (load time);
- `prefill`: each prompt length evaluated alone with a one-token answer (the fixed and the
  per-token cost of a prompt evaluation, and the jitter of whole durations);
- `burst`: every concurrency level x answer length, `repeats` times, with the longest prompt
  length; each burst's requests start together (decode step per active-slot count, and how
  much concurrent prompt evaluations share the compute).

- `overlap`: the longest prompt evaluated while another slot decodes an answer,
  `6 x repeats` times (how much decoding slots slow a prompt evaluation).

The held-out workload for `--validate` uses other concurrency levels (closed loop) and a
random mix of prompt and answer lengths between the probed extremes. Every prompt opens with
its own number, so no backend can answer a later one from a cached prefix; the same seed
gives the same texts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.calibrate.probe import Job
from bench.calibrate.settings import CalibrateSettings

_VOCAB = (
    "river stone lamp orchard copper window garden signal harbour meadow lantern bridge "
    "market winter engine paper candle forest island valley thunder mirror ladder castle "
    "pepper violin saddle anchor feather glacier compass basket marble canyon"
).split()


class PromptMaker:
    """Numbered, seeded prompts of an exact word count."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._count = 0

    def job(self, words: int, num_predict: int) -> Job:
        """A fresh prompt of `words` words (its number first) with this answer length."""
        self._count += 1
        head = [f"Note {self._count}:"]
        body = [self._rng.choice(_VOCAB) for _ in range(max(words - 2, 0))]
        return Job(" ".join(head + body), words, num_predict)


@dataclass(frozen=True, slots=True)
class Burst:
    """Requests that start together (one series' step)."""

    series: str
    jobs: tuple[Job, ...]


def probe_plan(config: CalibrateSettings, maker: PromptMaker) -> list[Burst]:
    """The prefill and burst series, interleaved by repeat so slow drift spreads evenly."""
    # The longest prompt: the bursts' requests leave the client a few ms apart, and that
    # skew must stay small beside the evaluation the shared-prefill fit looks at.
    longest = max(config.prompt_words)
    plan: list[Burst] = []
    for repeat in range(max(config.prefill_repeats, config.repeats)):
        if repeat < config.prefill_repeats:
            for words in config.prompt_words:
                plan.append(Burst("prefill", (maker.job(words, 1),)))
        if repeat < config.repeats:
            for level in config.concurrency:
                for tokens in config.output_tokens:
                    jobs = tuple(maker.job(longest, tokens) for _ in range(level))
                    plan.append(Burst("burst", jobs))
    return plan


def overlap_plan(config: CalibrateSettings, maker: PromptMaker) -> list[tuple[Job, Job]]:
    """(decoder, newcomer) pairs: an answer of the longest length, and the longest prompt
    sent while it decodes (the answer outlasts the evaluation it is to slow)."""
    longest, answer = max(config.prompt_words), max(config.output_tokens)
    return [
        (maker.job(min(config.prompt_words), answer), maker.job(longest, 1))
        for _ in range(6 * config.repeats)
    ]


def heldout_jobs(config: CalibrateSettings, maker: PromptMaker) -> list[Job]:
    """`validate_requests` jobs with prompt and answer lengths drawn between the extremes."""
    rng = random.Random(config.seed + 1)
    low_w, high_w = min(config.prompt_words), max(config.prompt_words)
    low_t, high_t = min(config.output_tokens), max(config.output_tokens)
    return [
        maker.job(rng.randint(low_w, high_w), rng.randint(low_t, high_t))
        for _ in range(config.validate_requests)
    ]
