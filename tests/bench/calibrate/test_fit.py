"""The pure fits: jitter through host delays, shared prefill replays, the step law or curve."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.calibrate.fit import all_decoding_gaps, fenced_mean, fit_steps
from bench.calibrate.jitter_fit import fit_groups
from bench.calibrate.prefill import fit_line
from bench.calibrate.probe import Sample
from bench.calibrate.shared_fit import replay
from farm.sim.curve import parse_curve

MEANS_S = (0.02, 0.06, 0.15, 0.3)


def _groups(jitter: float, delay_s: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for mean in MEANS_S:
        drawn = mean * rng.uniform(1 - jitter, 1 + jitter, 25)
        out.append(drawn + (rng.exponential(delay_s, 25) if delay_s else 0.0))
    return out


@pytest.mark.parametrize(
    ("jitter", "delay_s"), [(0.05, 0.0), (0.2, 0.002)], ids=["quiet-host", "busy-host"]
)
def test_jitter_and_means_are_found_through_host_delays(jitter: float, delay_s: float) -> None:
    found = fit_groups(_groups(jitter, delay_s, 0))
    assert found.jitter == pytest.approx(jitter, rel=0.08)
    # The shortest group on the busy host is 10 % stalls: its mean is the hardest to find
    # (part of the stall reads as jitter there).
    assert found.means_s == pytest.approx(MEANS_S, rel=0.1 if delay_s else 0.03)


def test_a_stall_in_proportion_is_found_only_where_it_is() -> None:
    """A compute slowed by other work stretches long evaluations more than short ones."""
    rng = np.random.default_rng(5)
    groups = [m * rng.uniform(0.95, 1.05, 30) + rng.exponential(0.4 * m, 30) for m in MEANS_S]
    found = fit_groups(groups)
    assert found.stall == pytest.approx(0.4, rel=0.3)
    assert found.means_s[-1] == pytest.approx(MEANS_S[-1], rel=0.1)
    assert fit_groups(_groups(0.1, 0.002, 0)).stall == 0.0


def test_small_groups_keep_their_median_and_say_nothing_of_jitter() -> None:
    found = fit_groups([[0.1, 0.3], []])
    assert found.jitter == 0.0 and found.means_s == (0.2, 0.0) and found.stall == 0.0


@pytest.mark.parametrize(
    ("shared", "starts", "works", "expected"),
    [
        (1.0, [0, 0, 0, 0], [0.1] * 4, 0.4),
        (0.5, [0, 0], [0.1, 0.1], 0.15),
        (0.0, [0, 0, 0], [0.1, 0.2, 0.3], 0.2),
        (1.0, [0, 0.05], [0.1, 0.1], 0.15),
    ],
    ids=["one-compute", "half-shared", "independent", "staggered"],
)
def test_a_replay_without_jitter_is_processor_sharing(
    shared: float, starts: list[float], works: list[float], expected: float
) -> None:
    assert replay(shared, starts, works, 0.0) == pytest.approx(expected)


def test_jitter_lowers_the_mean_of_prompts_sharing_a_compute() -> None:
    """The smallest work leaves first and the rest speed up: below W (1 + s (c - 1))."""
    assert replay(1.0, [0, 0], [0.1, 0.1], 0.2) == pytest.approx(0.2 - 0.1 * 0.2 / 3, rel=0.02)


def test_the_step_law_is_recovered_from_its_own_points() -> None:
    steps = {c: 0.02 * (1 + 0.4 * (c - 1) ** 1.5) for c in (1, 2, 4, 8)}
    residuals: dict[str, float] = {}
    fitted = fit_steps(steps, residuals)
    assert fitted["decode_ms"] == pytest.approx(20)
    assert fitted["batch_slowdown"] == pytest.approx(0.4)
    assert fitted["batch_exponent"] == pytest.approx(1.5)
    assert "decode_curve" not in fitted and max(map(abs, residuals.values())) < 1e-9


def test_the_llama_cpp_steps_need_a_curve() -> None:
    """Measured on the llama.cpp engine (2 cores): no power law passes within 5 % of all four
    points, so the measured points themselves become the profile's curve."""
    steps = {1: 0.0229, 2: 0.0433, 4: 0.0649, 8: 0.120}
    residuals: dict[str, float] = {}
    fitted = fit_steps(steps, residuals)
    assert max(map(abs, residuals.values())) > 0.05
    assert parse_curve(str(fitted["decode_curve"])) == ((1, 22.9), (2, 43.3), (4, 64.9), (8, 120.0))


def test_a_negative_fixed_cost_is_refitted_through_the_origin() -> None:
    line = fit_line([10, 100, 400], [0.004, 0.05, 0.21])
    assert line.base_s == 0.0 and line.per_token_s == pytest.approx(0.0005, rel=0.1)


SAMPLE = Sample("bursts", 0, 2, 8, 30, 0.0, 0.1, 0.01, 0.5, 0, 8, 0, 30, 0, 0, 0.01, 8)


def test_the_step_mean_keeps_uniform_jitter_and_fences_off_stalls() -> None:
    rng = np.random.default_rng(3)
    gaps = list(0.010 * (1 + rng.uniform(-0.1, 0.1, 2000)))
    stalled = gaps + [0.050] * 40  # a busy host's stalls: 2 % of the gaps, 5x as long
    assert fenced_mean(stalled) == pytest.approx(0.010, rel=0.005)
    assert np.mean(stalled) > 0.0107  # what a plain mean would have said


def test_only_gaps_while_every_answer_of_a_burst_decodes_count() -> None:
    def answer(first_ms: int, last_ms: int) -> Sample:
        stamps = tuple(t * 1_000_000 for t in range(first_ms, last_ms + 1, 10))
        return replace(SAMPLE, stamps_ns=(*stamps, stamps[-1] + 1))  # then the final chunk

    # Both decode from 100 ms (the later first token) until 300 ms (the earlier last one).
    gaps = all_decoding_gaps([answer(0, 300), answer(100, 500)])
    assert len(gaps) == 2 * 20 and gaps == pytest.approx([0.010] * 40)
