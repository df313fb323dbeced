"""Validating a profile: one held-out workload on the backend and on the profile's twin.

The held-out workload differs from the probes: closed-loop users at other concurrency levels
(`--validate-concurrency`) and a random mix of prompt and answer lengths. It runs on the
backend first, then on a simulator started with the profile and the backend's slot count (the
twin), with the same prompts; each level's TTFT and TPOT p50/p95 are compared by the client's
clock. Error = (twin - backend) / backend; the goal is within 10 % each.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.calibrate.design import PromptMaker, heldout_jobs
from bench.calibrate.probe import Job, Prober, Sample, backend_facts
from bench.calibrate.settings import CalibrateSettings
from bench.quantiles import quantile
from farm.sim.child import SimServer
from farm.sim.profile import Profile, read_profile

log = logging.getLogger(__name__)

GOAL = 0.10
METRICS = ("ttft_p50", "ttft_p95", "tpot_p50", "tpot_p95")
# Held-out prompts must not repeat the calibration's texts.
_HELDOUT_SEED_OFFSET = 7919


@dataclass(frozen=True, slots=True)
class LevelResult:
    """One held-out level: each metric on both sides (seconds) and the relative error."""

    users: int
    backend: dict[str, float]
    twin: dict[str, float]

    @property
    def errors(self) -> dict[str, float]:
        """(twin - backend) / backend per metric."""
        return {m: (self.twin[m] - self.backend[m]) / self.backend[m] for m in METRICS}


@dataclass(frozen=True, slots=True)
class Validation:
    """Every held-out level, and where the rows went."""

    levels: tuple[LevelResult, ...]
    rows_path: Path

    @property
    def worst(self) -> float:
        """The largest absolute error over every level and metric."""
        return max(abs(e) for level in self.levels for e in level.errors.values())


def summarize(samples: list[Sample]) -> dict[str, float]:
    """TTFT and TPOT p50/p95 (seconds) of one side's samples."""
    ttft = [s.ttft_s for s in samples]
    tpot = [s.tpot_s for s in samples]
    return {
        "ttft_p50": quantile(ttft, 0.5),
        "ttft_p95": quantile(ttft, 0.95),
        "tpot_p50": quantile(tpot, 0.5),
        "tpot_p95": quantile(tpot, 0.95),
    }


async def run_side(
    url: str, model: str | None, workloads: dict[int, list[Job]], timeout_s: float
) -> tuple[str, dict[int, list[Sample]]]:
    """Warm the model, then each level's closed loop; (model, samples per level)."""
    top = max(workloads)
    limits = httpx.Limits(max_connections=top + 4)
    async with httpx.AsyncClient(
        base_url=url, timeout=timeout_s, trust_env=False, limits=limits
    ) as http:
        model, _ = await backend_facts(http, model)
        prober = Prober(http, model)
        await prober.one(Job("Note 0: warm up", 4, 4), "warm", 0, 1)
        out = {}
        for users, jobs in workloads.items():
            out[users] = await prober.closed_loop(jobs, users, f"heldout-{users}")
            log.info("%s: %d users done", url, users)
    return model, out


def twin_slots(config: CalibrateSettings, profile: Profile) -> int:
    """The twin's NUM_PARALLEL: --num-parallel, else what the profile was measured with."""
    if config.num_parallel is not None:
        return config.num_parallel
    recorded = profile.measured.get("num_parallel")
    return int(recorded) if isinstance(recorded, int) else config.slots


async def validate(config: CalibrateSettings, path: Path) -> Validation:
    """Run the held-out workload on both sides and compare them."""
    profile = read_profile(path)
    maker = PromptMaker(config.seed + _HELDOUT_SEED_OFFSET)
    workloads = {users: heldout_jobs(config, maker) for users in config.validate_concurrency}
    wanted = config.model or profile.measured.get("model")
    _, real = await run_side(
        config.backend, str(wanted) if wanted else None, workloads, config.timeout_s
    )
    # Answers end by num_predict on both sides: the twin's own answer length must not cut it.
    with SimServer(
        profile=path, num_parallel=twin_slots(config, profile), response_tokens=100_000
    ) as twin:
        _, sim = await run_side(twin.url, None, workloads, config.timeout_s)
    levels = tuple(
        LevelResult(users, summarize(real[users]), summarize(sim[users])) for users in workloads
    )
    rows_path = path.with_name(path.name + ".validation.jsonl")
    with rows_path.open("w", encoding="utf-8") as out:
        for side, table in (("backend", real), ("twin", sim)):
            for samples in table.values():
                out.writelines(json.dumps({"side": side, **asdict(s)}) + "\n" for s in samples)
    return Validation(levels, rows_path)


def table_lines(result: Validation) -> list[str]:
    """The side-by-side table the CLI prints (milliseconds, errors in %)."""
    head = f"{'users':>5}  {'metric':<9} {'backend ms':>11} {'twin ms':>9} {'error':>8}"
    lines = [head]
    for level in result.levels:
        for metric in METRICS:
            error = level.errors[metric]
            mark = "" if abs(error) <= GOAL else "  > 10%"
            lines.append(
                f"{level.users:>5}  {metric:<9} {level.backend[metric] * 1000:>11.1f} "
                f"{level.twin[metric] * 1000:>9.1f} {error * 100:>+7.1f}%{mark}"
            )
    verdict = "within" if result.worst <= GOAL else "NOT within"
    lines.append(f"worst error {result.worst * 100:.1f}%: {verdict} the 10% goal")
    return lines
