"""Measuring one level: a closed loop of N streaming users against the farm, stopped as soon
as the level clearly passes or fails, when its time is up, or when the tune's budget ends.

The load is the bench's own: one locust run (`bench.run.run_locust`) with the bench's settings,
prompt set and one warm-up answer per user. While it runs, the rows it has written so far are
judged once a second (`bench.tune.level.judge_early`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from bench.record import COLUMNS, RequestRecord
from bench.run import Progress, run_locust
from bench.runtime import RunSpec
from bench.settings import BenchSettings
from bench.tune.level import MIN_TO_FAIL, Level, Slos, build_level, judge_early, resample_rows
from bench.tune.settings import TuneSettings
from farm.settings.load import validate

TickFn = Callable[[Progress], None]


def bench_settings(config: TuneSettings, out: Path, seconds: float) -> BenchSettings:
    """The bench settings a level runs with: the tune's work, `seconds` at most."""
    return validate(
        BenchSettings,
        {
            "target": ("proxy",),
            "model": config.model,
            "prompts": config.prompts,
            "prompt_count": config.prompt_count,
            "max_tokens": config.max_tokens,
            "seed": config.seed,
            "warmup": 1,
            "duration": max(1.0, seconds),
            "quiet": True,
            "out": out,
        },
    )


def read_rows(run_dir: Path) -> pd.DataFrame:
    """The rows a level's locust processes have written so far (a partial last line skipped)."""
    records = []
    for path in sorted(run_dir.glob("rows-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(asdict(RequestRecord.from_dict(json.loads(line))))
            except ValueError:
                continue  # the line being written right now
    return pd.DataFrame(records, columns=list(COLUMNS))


def run_level(
    config: TuneSettings,
    url: str,
    num_parallel: int,
    users: int,
    run_dir: Path,
    seconds: float,
    environ: Mapping[str, str],
    out_of_time: Callable[[], bool],
    on_tick: TickFn | None = None,
) -> Level:
    """Measure `users` concurrent users for `seconds` (longer, up to twice, until it has enough
    answers to judge); returns the judged level.

    Raises RunError when locust wrote nothing at all (the caller checks the farm)."""
    slos = Slos(config.slo_ttft_p95, config.slo_tpot_p95)
    cfg = bench_settings(config, run_dir.parent, 2 * seconds)
    spec = RunSpec(
        run_id=run_dir.name,
        target="proxy",
        url=url,
        model=config.model,
        streams=users,
        out_dir=str(run_dir),
        config=cfg,
    )
    early_rng = np.random.default_rng([config.seed, num_parallel, users, 1])
    # Rows that end after the level was decided (those cut short by the stop among them) stay
    # in the raw rows but not in the level's verdict: it is judged on what decided it.
    decided_at: list[int] = []

    started = time.monotonic()

    def decided() -> bool:
        if out_of_time():
            return True
        rows = read_rows(run_dir)
        res = resample_rows(rows, slos, early_rng)
        if judge_early(res, slos, config.min_requests) is not None:
            decided_at.append(len(rows))
            return True
        # Time is up once the level has enough answers to judge at all; locust's own limit
        # (twice the time) ends a level that cannot get them.
        return time.monotonic() - started >= seconds and res.n >= MIN_TO_FAIL

    run_locust(spec, run_dir, environ, on_tick, stop=decided)
    elapsed = time.monotonic() - started
    rows = read_rows(run_dir)
    judged = rows.iloc[: decided_at[0]] if decided_at else rows
    rng = np.random.default_rng([config.seed, num_parallel, users])
    return build_level(num_parallel, users, rows, judged, slos, config.min_requests, elapsed, rng)
