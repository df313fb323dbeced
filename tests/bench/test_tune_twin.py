"""`--twin PROFILE`: the calibrated simulator is searched first, its best candidates are then
confirmed on the real backend (starting at the twin's answer), and the report says how far
apart they were. Here the "real" backend is the simulator with other timing, so the twin is
off on purpose and the difference is known."""

from __future__ import annotations

import os
from pathlib import Path

from bench.tune.outcome import Candidate, TuneResult
from bench.tune.search import Capacity
from bench.tune.settings import TuneSettings
from bench.tune.tune import run_tune
from bench.tune.twin import to_confirm
from farm.settings.load import validate

# The real backend's timing: the decode step grows 65 % per extra slot (42.5 ms at 6 users,
# 49 ms at 7) ...
REAL_ENV = {
    "FARM_SIM_LOAD_MS": "50",
    "FARM_SIM_DECODE_MS": "10",
    "FARM_SIM_BATCH_SLOWDOWN": "0.65",
    "FARM_SIM_RESPONSE_TOKENS": "12",
}
# ... the twin believes 100 % (40 ms at 4, 50 ms at 5): with TPOT p95 <= 45 ms it allows 4
# users where the real backend allows 6.
PROFILE = """schema = 1
[measured]
model = "gemma3:4b"
note = "a deliberately pessimistic twin"
[timing]
load_ms = 50.0
decode_ms = 10.0
batch_slowdown = 1.0
"""


def test_the_twin_is_searched_then_its_best_candidates_are_confirmed(tmp_path: Path) -> None:
    profile = tmp_path / "twin.toml"
    profile.write_text(PROFILE)
    config = validate(
        TuneSettings,
        {
            "model": "gemma3:4b",
            "mode": "sim",
            "slo_ttft_p95": 0.1,
            "slo_tpot_p95": 0.045,
            "num_parallel": (2, 8),
            "max_users": 8,
            "min_requests": 20,
            "budget": 240.0,
            "level_time": 15.0,
            "prompts": "short",
            "twin": profile,
            "out": tmp_path / "t",
        },
    )
    result = run_tune(config, environ={**os.environ, **REAL_ENV})

    assert result.twin is not None
    twin = {c.num_parallel: c.capacity.users for c in result.twin.candidates}
    real = {c.num_parallel: c.capacity.users for c in result.candidates}
    assert twin == {2: 2, 8: 4}
    assert real == {2: 2, 8: 6}
    # The real search started at the twin's answer, not at NUM_PARALLEL.
    assert [lv.users for lv in result.candidates[1].levels][0] == 4
    report = (tmp_path / "t" / "report.md").read_text()
    assert "twin vs real: NUM_PARALLEL=8: twin 4 users" in report
    assert "real backend 6" in report and "+2 users, +50%" in report
    assert (tmp_path / "t" / "twin" / "report.md").is_file()
    assert result.headline.startswith("NUM_PARALLEL=8 serves 6 users")


def _candidate(num_parallel: int, users: int) -> Candidate:
    return Candidate(num_parallel, (), Capacity(users, users, users, False), True)


def test_only_the_twins_best_serving_candidates_are_confirmed(tmp_path: Path) -> None:
    config = validate(TuneSettings, {"model": "m", "out": tmp_path})
    cands = (_candidate(1, 0), _candidate(2, 3), _candidate(4, 7), _candidate(8, 7))
    assert to_confirm(TuneResult(tmp_path, config, cands)) == {4: 7, 8: 7}
    assert to_confirm(TuneResult(tmp_path, config, (_candidate(1, 0),))) == {}
