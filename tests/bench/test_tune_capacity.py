"""Acceptance: against the simulator, whose timing model gives the true capacity, the tune's
capacity is within one user of it at three NUM_PARALLEL values, and its 95% CI covers it.

The analytic capacity comes from the simulator's own settings (`TimingParams`), not from a
constant: with every user holding a slot, TTFT = prompt evaluation + one decode step and
TPOT = the decode step at that many held slots; one user more than the slots makes every
answer wait for one (closed loop: on average a whole answer divided by the slots), which the
TTFT SLO chosen here does not allow. The timing is fast (10 ms steps, 12-token answers) so the
whole tune takes under a minute, and the SLOs sit half-way between user counts so that the
noise of a shared 2-core machine cannot move the answer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.prompts import resolve_prompts
from bench.tune.settings import TuneSettings
from bench.tune.tune import run_tune
from farm.settings import load
from farm.settings.load import validate
from farm.sim.settings import SimSettings
from farm.sim.timing import TimingParams
from farm.sim.tokens import chat_prompt_tokens, generate_prompt_tokens

# The simulator's timing, as the launcher's sim child reads it from its environment.
SIM_ENV = {
    "FARM_SIM_LOAD_MS": "100",
    "FARM_SIM_DECODE_MS": "10",
    "FARM_SIM_BATCH_SLOWDOWN": "1.0",
    "FARM_SIM_JITTER": "0.05",
    "FARM_SIM_RESPONSE_TOKENS": "12",
}
SLO_TTFT_S = 0.100
SLO_TPOT_S = 0.045
CANDIDATES = (2, 4, 8)
MAX_USERS = 8
PROMPTS = "short"


def prompt_tokens(config: TuneSettings) -> int:
    """The longest prompt of the tune's set, counted by the simulator's rule."""
    counts = []
    for p in resolve_prompts(config.prompts, config.prompt_count, config.seed):
        if p.messages is None:
            counts.append(generate_prompt_tokens(p.text))
        else:
            counts.append(chat_prompt_tokens([m.content for m in p.messages]))
    return max(counts)


def analytic_capacity(sim: SimSettings, num_parallel: int, config: TuneSettings) -> int:
    """The most users whose every answer meets both SLOs, from the timing model."""
    timing = TimingParams.from_settings(sim)
    tokens = prompt_tokens(config)
    capacity = 0
    for users in range(1, min(num_parallel, config.max_users) + 1):
        if timing.ttft_s(tokens, users) > config.slo_ttft_p95:
            break
        if timing.step_s(users) > config.slo_tpot_p95:
            break
        capacity = users
    if capacity == num_parallel:
        # Past the slots, the mean wait alone (an answer's time over the slots) breaks the TTFT
        # SLO, so the slots are the limit; check that this holds for the chosen settings.
        answer = timing.answer_s(tokens, sim.token_range[1], num_parallel)
        assert timing.ttft_s(tokens, num_parallel) + answer / num_parallel > SLO_TTFT_S * 1.4
    return capacity


def test_capacity_matches_the_simulators_timing_model_at_three_settings(tmp_path: Path) -> None:
    environ = {**os.environ, **SIM_ENV}
    sim = load(SimSettings, [], SIM_ENV).settings
    config = validate(
        TuneSettings,
        {
            "model": "gemma3:4b",
            "mode": "sim",
            "slo_ttft_p95": SLO_TTFT_S,
            "slo_tpot_p95": SLO_TPOT_S,
            "num_parallel": CANDIDATES,
            "max_users": MAX_USERS,
            "budget": 240.0,
            "level_time": 20.0,
            "prompts": PROMPTS,
            "out": tmp_path / "tune",
        },
    )
    expected = {p: analytic_capacity(sim, p, config) for p in CANDIDATES}
    # The settings are chosen to show both limits: the slots (2, 4) and the decode step (8).
    assert expected == {2: 2, 4: 4, 8: 4}

    result = run_tune(config, environ=environ)

    assert not result.stopped
    found = {c.num_parallel: c.capacity for c in result.candidates}
    assert sorted(found) == list(CANDIDATES)
    for num_parallel, cap in found.items():
        want = expected[num_parallel]
        assert abs(cap.users - want) <= 1, (num_parallel, cap, want)
        assert cap.lo <= want <= cap.hi, (num_parallel, cap, want)
    out = tmp_path / "tune"
    for name in ("report.md", "report.html", "rows.parquet", "levels.csv", "tune.json"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "capacity.png",
        "latency.png",
        "pareto.png",
    ]
    assert result.headline.startswith(f"NUM_PARALLEL={result.best.num_parallel} serves ")
    assert result.headline in (out / "report.md").read_text()


@pytest.mark.parametrize("num_parallel", [1, 3], ids=["one-slot", "three-slots"])
def test_analytic_capacity_is_the_slot_count_while_the_step_allows(num_parallel: int) -> None:
    sim = load(SimSettings, [], SIM_ENV).settings
    config = validate(
        TuneSettings,
        {"model": "m", "slo_ttft_p95": SLO_TTFT_S, "slo_tpot_p95": SLO_TPOT_S, "prompts": PROMPTS},
    )
    assert analytic_capacity(sim, num_parallel, config) == num_parallel
