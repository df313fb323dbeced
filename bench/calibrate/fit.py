"""Fitting the timing model to probe samples (pure: samples in, parameters out).

- whole durations (`bench.calibrate.jitter_fit`): the cold loads and each prompt length
  evaluated alone, by maximum likelihood as a uniform jitter plus exponential stalls, which
  gives the jitter, each group's stall-free mean (the load time) and the stall terms;
- prompt evaluation: a weighted least-squares line through those means against the prompt
  tokens (weights 1/y², since jitter scales each duration), re-expressed per prompt token as
  the simulator counts them;
- decode step: per concurrency level, the mean gap between the server's `created_at` stamps
  of consecutive tokens while every slot of a burst decodes (after the last first token,
  before the first answer ends), with stalls fenced off (`fenced_mean`); without stamps, the
  median of the client's median gaps. Fitted by
  `decode_ms * (1 + batch_slowdown * (c - 1) ** batch_exponent)` (a line in log-log space);
  when that law misses a level by more than 5 % the measured points go in as a curve;
- prompts and decoding slots: the overlap probes' evaluation over a lone one;
- shared prefill: `farm.sim.sharing`'s processor sharing, fitted to the bursts' mean
  prompt evaluation (`bench.calibrate.shared_fit`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.calibrate.errors import FitError
from bench.calibrate.jitter_fit import JitterFit, fit_groups
from bench.calibrate.prefill import PrefillLine, fit_line
from bench.calibrate.probe import NS_PER_S, Sample
from bench.calibrate.shared_fit import fit_shared
from farm.sim.curve import format_curve

CURVE_THRESHOLD = 0.05
# Fewer stamped gaps than this at a level: the client's clock instead (a backend that does
# not stamp its chunks, or bursts too short to decode all together).
MIN_STAMPED_GAPS = 20
# Tukey's fences, in interquartile ranges beyond the quartiles.
FENCE = 1.5


@dataclass(frozen=True, slots=True)
class Fit:
    """Fitted `[timing]` values, residuals by probe point, and facts about the fit."""

    timing: dict[str, float | str]
    residuals: dict[str, float]
    facts: dict[str, float | int | str] = field(default_factory=dict)


def fit_all(samples: Sequence[Sample]) -> Fit:
    """The whole timing model from a calibration's samples."""
    loads = [s.load_duration_ns / NS_PER_S for s in samples if s.series == "load"]
    # A burst of one is a lone evaluation too (of the longest length): more points, same law.
    lone = [
        s for s in samples if s.series == "prefill" or (s.series == "burst" and s.concurrency == 1)
    ]
    bursts = [s for s in samples if s.series == "burst"]
    if not lone or not bursts:
        raise FitError("no prefill or burst samples to fit; the probe set ran empty")
    timing: dict[str, float | str] = {}
    residuals: dict[str, float] = {}
    facts: dict[str, float | int | str] = {}
    rough = fit_line([s.prompt_eval_count for s in lone], [_eval_s(s) for s in lone])
    points, groups = _prefill_groups(lone, rough)
    whole = fit_groups([*groups, loads], loads=bool(loads))
    line = fit_line(points, list(whole.means_s[: len(points)]))
    if loads:
        timing["load_ms"] = whole.means_s[-1] * 1000
    # The twin counts prompt tokens by its own rule: carry the cost over to that count.
    intercept, slope = _token_map(lone)
    timing["prefill_base_ms"] = max(line.at(intercept), 0.0) * 1000
    timing["prefill_ms_per_token"] = line.per_token_s * slope * 1000
    facts["prompt_tokens_per_sim_token"] = round(slope, 4)
    facts["backend_prefill_ms_per_token"] = round(line.per_token_s * 1000, 4)
    # The stalls the lone evaluations showed beyond the jitter: the twin draws its own.
    timing["prefill_delay_ms"] = whole.delay_s * 1000
    timing["prefill_stall"] = whole.stall
    for words, tokens, group in zip(
        sorted({s.prompt_words for s in lone}), points, groups, strict=True
    ):
        predicted = line.at(tokens) * (1 + whole.stall) + whole.delay_s
        residuals[f"prefill_w{words}"] = _rel(predicted, float(np.mean(group)))
    steps = step_by_level(bursts)
    timing.update(fit_steps(steps, residuals))
    with_decode = fit_with_decode(samples, line, whole)
    timing["prefill_decode_shared"] = with_decode
    lost = decoder_lost_fraction(samples)
    if lost is not None:
        facts["overlap_decoder_lost_fraction"] = round(lost, 3)
    shared, shared_residuals = fit_shared(bursts, line, whole, with_decode)
    timing["prefill_shared"] = shared
    residuals.update(shared_residuals)
    timing["jitter"] = whole.jitter
    residuals.update(_context_residuals(bursts, steps))
    return Fit(timing, residuals, facts)


def _eval_s(sample: Sample) -> float:
    return sample.prompt_eval_duration_ns / NS_PER_S


def _prefill_groups(
    lone: Sequence[Sample], rough: PrefillLine
) -> tuple[list[float], list[list[float]]]:
    """Per prompt length: its median token count and its durations, each scaled to that
    count (a real tokenizer gives prompts of equal words unequal counts)."""
    points, groups = [], []
    for words in sorted({s.prompt_words for s in lone}):
        group = [s for s in lone if s.prompt_words == words]
        tokens = float(np.median([s.prompt_eval_count for s in group]))
        ref = rough.at(tokens)
        points.append(tokens)
        groups.append([_eval_s(s) * ref / rough.at(s.prompt_eval_count) for s in group])
    return points, groups


def _token_map(lone: Sequence[Sample]) -> tuple[float, float]:
    """backend tokens = intercept + slope * simulator tokens, over the probe prompts."""
    sim = np.array([s.sim_prompt_tokens for s in lone], dtype=float)
    real = np.array([s.prompt_eval_count for s in lone], dtype=float)
    if np.array_equal(sim, real):
        return 0.0, 1.0
    slope, intercept = np.polyfit(sim, real, 1)
    return float(intercept), float(slope)


def fit_with_decode(samples: Sequence[Sample], line: PrefillLine, whole: JitterFit) -> float:
    """How much one decoding slot slows a prompt evaluation: the overlap probes' mean
    evaluation over what it takes alone, less one."""
    slowed = [
        _eval_s(s) / (line.at(s.prompt_eval_count) * (1 + whole.stall) + whole.delay_s) - 1
        for s in samples
        if s.series == "overlap"
    ]
    return max(float(np.mean(slowed)), 0.0) if slowed else 0.0


def decoder_lost_fraction(samples: Sequence[Sample]) -> float | None:
    """How much of a newcomer's evaluation the decoding answer lost (median over overlaps):
    its eval time beyond its median gap per token, over the newcomer's evaluation. Near 1,
    decoding stops while a prompt is evaluated (`decode_prefill_stall` large); not fitted
    into the profile yet, only reported."""
    pairs: dict[int, dict[str, Sample]] = {}
    for s in samples:
        if s.series in ("overlap", "overlap-decoder"):
            pairs.setdefault(s.burst, {})[s.series] = s
    lost = [
        (
            _decode_s(p["overlap-decoder"])
            - p["overlap-decoder"].gap_p50_s * p["overlap-decoder"].eval_count
        )
        / _eval_s(p["overlap"])
        for p in pairs.values()
        if len(p) == 2 and p["overlap-decoder"].gap_p50_s is not None and _eval_s(p["overlap"]) > 0
    ]
    return float(np.median(lost)) if lost else None


def _decode_s(sample: Sample) -> float:
    return sample.eval_duration_ns / NS_PER_S


def step_by_level(bursts: Sequence[Sample]) -> dict[int, float]:
    """Seconds per decode step at each concurrency level: from the server's stamps where the
    backend gives them (`all_decoding_gaps`, `fenced_mean`), else from the client's gaps."""
    out = {}
    for level in sorted({s.concurrency for s in bursts}):
        group = [s for s in bursts if s.concurrency == level]
        gaps = all_decoding_gaps(group)
        if len(gaps) >= MIN_STAMPED_GAPS:
            out[level] = fenced_mean(gaps)
        elif (step := _client_step(group)) is not None:
            out[level] = step
    if 1 not in out:
        raise FitError("no decode steps at concurrency 1; include 1 in --concurrency")
    return out


def all_decoding_gaps(group: Sequence[Sample]) -> list[float]:
    """Seconds between consecutive tokens of each answer, by the server's `created_at`, while
    every answer of its burst decodes: after the burst's last first token (its prompts are all
    evaluated, which on a real engine stalls the steps: `prefill_decode_shared`'s cost, not
    the step's) and before its first answer ends (its slot goes, and the rest decode with
    fewer). The client's own clock would add its scheduling delays to every gap."""
    by_burst: dict[int, list[Sample]] = {}
    for sample in group:
        by_burst.setdefault(sample.burst, []).append(sample)
    gaps: list[float] = []
    for burst in by_burst.values():
        if any(len(s.stamps_ns) < 3 for s in burst):
            continue  # an answer without stamps (or one token) leaves the window unknown
        begin = max(s.stamps_ns[0] for s in burst)
        end = min(s.stamps_ns[-1] for s in burst)
        for sample in burst:
            inside = [t for t in sample.stamps_ns[:-1] if begin <= t <= end]
            gaps += [(b - a) / NS_PER_S for a, b in zip(inside, inside[1:], strict=False)]
    return gaps


def fenced_mean(values: Sequence[float]) -> float:
    """The mean inside Tukey's fences (1.5 interquartile ranges beyond the quartiles).

    A uniform jitter lies wholly inside them, so the mean keeps its full efficiency (a
    median's is far lower and, on a host whose timer wakes late by a fraction of a
    millisecond, sits off the mean); a stall of a busy host, and the short gap after a
    late stamp, fall outside."""
    data = np.asarray(values, dtype=float)
    low, high = np.quantile(data, [0.25, 0.75])
    spread = FENCE * (high - low)
    return float(np.mean(data[(data >= low - spread) & (data <= high + spread)]))


def _client_step(group: Sequence[Sample]) -> float | None:
    # The median gap between tokens, not eval_duration / eval_count: on a real engine a
    # slot's answer also waits while the others' prompts are evaluated, which is the
    # prompts' cost (prefill_decode_shared), not the step's.
    picked = (s.gap_p50_s if s.gap_p50_s is not None else s.step_s for s in group)
    steps = [step for step in picked if step is not None]
    return float(np.median(steps)) if steps else None


def fit_steps(steps: dict[int, float], residuals: dict[str, float]) -> dict[str, float | str]:
    """decode_ms, batch_slowdown, batch_exponent (and a curve when the law misses)."""
    d = steps[1]
    growth = {c: steps[c] / d - 1 for c in steps if c > 1 and steps[c] > d}
    slowdown, exponent = 0.0, 1.0
    if len(growth) == 1:
        ((c, g),) = growth.items()
        slowdown = g / (c - 1)
    elif len(growth) >= 2:
        logs_x = np.log([c - 1 for c in growth])
        logs_y = np.log(list(growth.values()))
        exponent, log_s = np.polyfit(logs_x, logs_y, 1)
        slowdown = math.exp(log_s)
        exponent = float(min(max(exponent, 0.05), 4.0))
    out: dict[str, float | str] = {
        "decode_ms": d * 1000,
        "batch_slowdown": float(slowdown),
        "batch_exponent": float(exponent),
    }
    worst = 0.0
    for c, measured in steps.items():
        predicted = d * (1 + slowdown * (c - 1) ** exponent) if c > 1 else d
        residuals[f"step_c{c}"] = _rel(predicted, measured)
        worst = max(worst, abs(residuals[f"step_c{c}"]))
    if worst > CURVE_THRESHOLD:
        out["decode_curve"] = format_curve(tuple((c, s * 1000) for c, s in sorted(steps.items())))
    return out


def _context_residuals(bursts: Sequence[Sample], steps: dict[int, float]) -> dict[str, float]:
    """How far each answer length's step is from its level's: a step that grows with the
    context shows here as long answers running slower than short ones."""
    out = {}
    for tokens in sorted({s.num_predict for s in bursts}):
        ratios = [
            s.step_s / steps[s.concurrency]
            for s in bursts
            if s.num_predict == tokens and s.step_s is not None and s.concurrency in steps
        ]
        if ratios:
            out[f"step_out{tokens}"] = float(np.median(ratios)) - 1
    return out


def _rel(predicted: float, measured: float) -> float:
    return (predicted - measured) / measured if measured else 0.0
