"""The tuner's pure parts: the bracketing search, the bootstrap, the verdicts, the budget,
`--apply`'s edit and the settings' duration flags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.tune import apply, bootstrap, budget
from bench.tune.level import Slos, judge_early, judge_final
from bench.tune.search import capacity_of, next_users
from bench.tune.settings import TuneSettings
from farm.settings import SettingsError, load

Curve = Callable[[int], tuple[float, float]]


def search(curve: Curve, num_parallel: int, max_users: int) -> list[int]:
    """Drive the search against known (TTFT, TPOT) ratio curves; returns the levels tried."""
    levels: dict[int, tuple[float, ...]] = {}
    while (users := next_users(levels, num_parallel, max_users)) is not None:
        assert users not in levels
        levels[users] = curve(users)
    return list(levels)


def answer(tried: list[int], curve: Curve) -> int:
    return capacity_of({}, {u: max(curve(u)) <= 1 for u in tried}, 64).users


def slots_then_wait(slots: int) -> Curve:
    """TTFT within the SLO while every user has a slot, far over it past the slots."""
    return lambda u: (0.3 if u <= slots else 3.0 + u, 0.5)


def linear(truth: int) -> Curve:
    """TPOT growing linearly, crossing its SLO half-way between truth and truth + 1."""
    return lambda u: (0.3, u / (truth + 0.5))


def queueing(slots: int, truth: int) -> Curve:
    """TPOT flat past the slots while TTFT grows with the queue, crossing after `truth`."""
    return lambda u: (0.3 + 0.7 * max(0, u - slots) / (truth + 0.5 - slots), 0.8)


@pytest.mark.parametrize(
    ("curve", "num_parallel", "truth", "most"),
    [
        (slots_then_wait(4), 4, 4, 2),
        (linear(4), 8, 4, 3),
        (linear(13), 4, 13, 5),
        (linear(37), 8, 37, 6),
        (queueing(16, 21), 16, 21, 5),
        (lambda u: (1.5 * u, 0.1), 2, 0, 2),
    ],
    ids=["slots-limit", "below-slots", "above-slots", "far-above", "queue", "nobody"],
)
def test_search_brackets_the_capacity_in_few_levels(
    curve: Curve, num_parallel: int, truth: int, most: int
) -> None:
    tried = search(curve, num_parallel, max_users=64)
    assert answer(tried, curve) == truth
    assert len(tried) <= most, tried
    assert truth + 1 in tried or truth == 0  # the failing neighbour was measured


def test_search_stops_at_max_users_and_says_at_least() -> None:
    levels = {2: (0.1, 0.1), 3: (0.1, 0.1), 6: (0.2, 0.1), 8: (0.3, 0.1)}
    assert next_users(levels, 2, 8) is None
    cap = capacity_of({}, {u: True for u in levels}, 8)
    assert (cap.users, cap.at_least) == (8, True)


def test_a_twins_answer_is_where_the_search_starts() -> None:
    assert next_users({}, 4, 64, start=11) == 11
    assert next_users({11: (0.9, 0.5)}, 4, 64, start=11) == 12


def test_capacity_ci_comes_from_the_replicates() -> None:
    passes = {
        2: np.ones(1000, dtype=bool),
        3: np.arange(1000) < 900,  # passes in 90 % of the replicates
        4: np.zeros(1000, dtype=bool),
    }
    cap = capacity_of(passes, {2: True, 3: True, 4: False}, 8)
    assert (cap.users, cap.lo, cap.hi) == (3, 2, 3)


def test_bootstrap_failures_count_as_violations() -> None:
    rng = np.random.default_rng(1)
    fast = np.full(40, 0.05)
    clean = bootstrap.resample(fast, fast / 10, 0.1, 0.01, rng)
    assert clean.passes.all() and clean.ttft.hi == pytest.approx(0.05)
    ttft = bootstrap.with_failures(fast, 10)
    dirty = bootstrap.resample(ttft, bootstrap.with_failures(fast / 10, 10), 0.1, 0.01, rng)
    assert dirty.ttft.value == bootstrap.FAILED_S
    assert dirty.passes.mean() < 0.01  # a resample with under 5 % failures is rare


SLOS = Slos(ttft_s=0.1, tpot_s=0.05)


def test_a_level_clearly_fails_on_few_answers_and_passes_only_on_enough() -> None:
    rng = np.random.default_rng(2)
    slow = bootstrap.resample(np.full(8, 0.3), np.full(8, 0.01), 0.1, 0.05, rng)
    assert judge_early(slow, SLOS, 30) is not None
    few = bootstrap.resample(np.full(10, 0.02), np.full(10, 0.01), 0.1, 0.05, rng)
    assert judge_early(few, SLOS, 30) is None
    verdict = judge_final(few, SLOS, 30)
    assert verdict.passed and not verdict.clear
    many = bootstrap.resample(np.full(30, 0.02), np.full(30, 0.01), 0.1, 0.05, rng)
    verdict = judge_early(many, SLOS, 30)
    assert verdict is not None and verdict.passed and verdict.clear


def test_the_budget_shares_what_is_left_and_refuses_a_level_too_short() -> None:
    plan = budget.Budget(300.0)
    assert plan.reserve_s == 15.0
    assert plan.level_s(0.0, levels_left=10, starts_left=2, start_s=5.0, cap_s=60.0) == 27.5
    assert plan.level_s(280.0, levels_left=4, starts_left=0, start_s=5.0, cap_s=60.0) == 0.0
    assert plan.eta_s(290.0, 5, 1, 30.0, 5.0) == 10.0


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", "FARM_NUM_PARALLEL=8\n"),
        ("A=1", "A=1\nFARM_NUM_PARALLEL=8\n"),
        ("FARM_NUM_PARALLEL=2\n# keep\nB=2\n", "FARM_NUM_PARALLEL=8\n# keep\nB=2\n"),
        ("export FARM_NUM_PARALLEL = 2\n", "FARM_NUM_PARALLEL=8\n"),
    ],
    ids=["empty", "no-newline", "replaced-in-place", "export-form"],
)
def test_apply_changes_one_key_only(before: str, after: str) -> None:
    assert apply.updated(before, 8) == after


def test_apply_shows_a_diff_and_nothing_when_already_set(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    diff = apply.apply_num_parallel(path, 4)
    assert "+FARM_NUM_PARALLEL=4" in diff and path.read_text() == "FARM_NUM_PARALLEL=4\n"
    assert apply.apply_num_parallel(path, 4) == ""


def test_duration_flags_take_units() -> None:
    argv = ["--model", "m", "--slo-ttft-p95", "2s", "--slo-tpot-p95", "100ms", "--budget", "20m"]
    config = load(TuneSettings, [*argv, "--num-parallel", "8,1,4"], {}).settings
    assert (config.slo_ttft_p95, config.slo_tpot_p95, config.budget) == (2.0, 0.1, 1200.0)
    assert config.candidates == (1, 4, 8)
    with pytest.raises(SettingsError, match="--slo-tpot-p95 '100 mins'"):
        load(TuneSettings, ["--model", "m", "--slo-tpot-p95", "100 mins"], {})
