"""The tune: for each NUM_PARALLEL candidate, restart the farm, then search the user count.

`run_tune` owns the order of things and what survives a stop: every level measured is kept
(its raw rows stay in its folder) and the report is written however the tune ends, on
completion, when the budget runs out, on Ctrl-C, when the SLOs cannot be met even by one user
or when the backend dies. The search itself is `bench.tune.search`, a level `bench.tune.probe`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.errors import RunError
from bench.run import Progress
from bench.tune import budget, report, twin
from bench.tune.errors import BackendDied, CannotRetune, Interrupted, TuneError
from bench.tune.level import Level
from bench.tune.outcome import Candidate, TuneResult
from bench.tune.probe import run_level
from bench.tune.restart import RunningFarm, start_farm, stop_farm
from bench.tune.search import next_users
from bench.tune.settings import TuneSettings


@dataclass(frozen=True, slots=True)
class TuneProgress:
    """One progress sample: where the tune is and how long it should still take."""

    num_parallel: int
    users: int
    candidate: int
    candidates: int
    levels_done: int
    answers: int
    elapsed_s: float
    eta_s: float
    budget_s: float


TuneProgressFn = Callable[[TuneProgress], None]


def default_out(config: TuneSettings, now: datetime | None = None) -> Path:
    """`results/tune-<UTC timestamp>-<model>`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / f"tune-{stamp}-{config.model.replace(':', '-').replace('/', '-')}"


def level_dir(out: Path, num_parallel: int, users: int) -> Path:
    """Where one level's raw rows go."""
    return out / "levels" / f"np{num_parallel}-u{users}"


@dataclass(slots=True)
class _Tune:
    """What the tune has measured so far, kept whatever stops it."""

    config: TuneSettings
    out: Path
    environ: Mapping[str, str]
    on_progress: TuneProgressFn | None
    started: float = field(default_factory=time.monotonic)
    done: list[Candidate] = field(default_factory=list)
    current: list[Level] = field(default_factory=list)
    where: tuple[int, int] | None = None
    starts: Mapping[int, int] = field(default_factory=dict)
    twin: TuneResult | None = None
    start_s: float = 5.0
    level_s: list[float] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def plan(self, index: int) -> tuple[int, int]:
        """(levels left, restarts left) from candidate `index` on."""
        after = len(self.config.candidates) - index - 1
        seen = [len(c.levels) for c in self.done]
        return budget.levels_left(len(self.current), after, seen), after

    def tick(self, index: int, users: int, answers: int) -> None:
        if self.on_progress is None:
            return
        left, starts = self.plan(index)
        mean = sum(self.level_s) / len(self.level_s) if self.level_s else self.config.level_time
        plan = budget.Budget(self.config.budget)
        self.on_progress(
            TuneProgress(
                num_parallel=self.config.candidates[index],
                users=users,
                candidate=index + 1,
                candidates=len(self.config.candidates),
                levels_done=sum(len(c.levels) for c in self.done) + len(self.current),
                answers=answers,
                elapsed_s=self.elapsed(),
                eta_s=plan.eta_s(self.elapsed(), left, starts, mean, self.start_s),
                budget_s=self.config.budget,
            )
        )

    def candidate(self, index: int) -> Candidate | None:
        """Search one candidate; None when the budget did not allow a single level."""
        num_parallel = self.config.candidates[index]
        self.current = []
        self.where = (num_parallel, 0)
        self.tick(index, 0, 0)
        began = time.monotonic()
        state_dir = self.out / "farm" / f"np{num_parallel}"
        try:
            farm = start_farm(self.config, num_parallel, state_dir, self.environ)
            self.start_s = time.monotonic() - began
            return self._search(index, farm)
        finally:
            # Also after a failed or interrupted start: whatever the launcher left is stopped.
            stop_farm(state_dir)

    def _search(self, index: int, farm: RunningFarm) -> Candidate | None:
        config, plan = self.config, budget.Budget(self.config.budget)
        complete = True
        start = self.starts.get(farm.num_parallel)
        while (
            users := next_users(self._ratios(), farm.num_parallel, config.max_users, start)
        ) is not None:
            left, starts = self.plan(index)
            seconds = plan.level_s(self.elapsed(), left, starts, self.start_s, config.level_time)
            if seconds <= 0:
                complete = False
                break
            self.where = (farm.num_parallel, users)
            level = self._level(index, farm, users, seconds)
            self.current.append(level)
            if not farm.alive():
                raise self._died(farm, users)
        if not self.current:
            return None
        return Candidate.of(farm.num_parallel, tuple(self.current), config.max_users, complete)

    def _level(self, index: int, farm: RunningFarm, users: int, seconds: float) -> Level:
        plan = budget.Budget(self.config.budget)
        began = time.monotonic()

        def out_of_time() -> bool:
            return plan.left_s(self.elapsed()) <= 0 or not farm.alive()

        def on_tick(p: Progress) -> None:
            self.tick(index, users, p.done)

        run_dir = level_dir(self.out, farm.num_parallel, users)
        try:
            level = run_level(
                self.config, farm.url, farm.num_parallel, users, run_dir, seconds,
                self.environ, out_of_time, on_tick,
            )  # fmt: skip
        except RunError as exc:
            if not farm.alive():
                raise self._died(farm, users) from exc
            raise
        self.level_s.append(time.monotonic() - began)
        return level

    def _ratios(self) -> dict[int, tuple[float, ...]]:
        return {lv.users: lv.ratios for lv in self.current}

    def _died(self, farm: RunningFarm, users: int) -> BackendDied:
        return BackendDied(
            f"the backend died mid-tune (NUM_PARALLEL={farm.num_parallel}, {users} users); "
            f"what was measured is kept in {self.out} (see {farm.state_dir / 'logs'})"
        )

    def partial(self) -> Candidate | None:
        """The candidate being searched when the tune stopped, with its levels so far."""
        if not self.current or self.where is None:
            return None
        return Candidate.of(self.where[0], tuple(self.current), self.config.max_users, False)

    def result(self, stopped: str) -> TuneResult:
        partial = self.partial()
        measured = [*self.done, *([partial] if partial else [])]
        return TuneResult(self.out, self.config, tuple(measured), stopped, self.twin)


def run_tune(
    config: TuneSettings, *, environ: Mapping[str, str], on_progress: TuneProgressFn | None = None
) -> TuneResult:
    """Tune NUM_PARALLEL and the user count for `config`; writes and returns the report.

    `environ` is the entry point's environment: the launcher's children start from it (so a
    simulator backend reads its FARM_SIM_* timing from it). TuneErrors propagate after
    the report of what was measured has been written; Ctrl-C becomes `Interrupted`. With
    `--twin` the twin is tuned first (its report in `twin/`), then its best candidates are
    confirmed on the real backend."""
    if config.backend_url:
        raise CannotRetune(
            f"--backend-url {config.backend_url}: an external Ollama cannot be retuned (its "
            "NUM_PARALLEL is set where it runs); let the launcher start it with --mode docker, "
            "local or sim, or use `invoke bench --sweep` to measure users at its setting"
        )
    out = config.out or default_out(config)
    if config.twin is None:
        return measure(config, out, environ, on_progress)
    began = time.monotonic()
    twin_config = twin.twin_settings(config, out / "twin")
    found = measure(twin_config, out / "twin", twin.twin_environ(environ, config.twin), on_progress)
    starts = twin.to_confirm(found)
    if not starts:
        return found
    real = twin.confirm_settings(config, starts, time.monotonic() - began)
    return measure(real, out, environ, on_progress, starts=starts, twin_result=found)


def measure(
    config: TuneSettings,
    out: Path,
    environ: Mapping[str, str],
    on_progress: TuneProgressFn | None,
    starts: Mapping[int, int] | None = None,
    twin_result: TuneResult | None = None,
) -> TuneResult:
    """Search every candidate of `config` into `out`; the report is written however it ends."""
    out.mkdir(parents=True, exist_ok=True)
    tune = _Tune(config, out, environ, on_progress, starts=starts or {}, twin=twin_result)
    stopped = ""
    try:
        for index in range(len(config.candidates)):
            found = tune.candidate(index)
            tune.current = []
            if found is None:
                stopped = f"the budget ran out before NUM_PARALLEL={config.candidates[index]}"
                break
            tune.done.append(found)
            if not found.complete:
                stopped = f"the budget ran out during NUM_PARALLEL={found.num_parallel}"
                break
            if found.unmeetable:
                stopped = found.unmeetable
                break
    except KeyboardInterrupt as exc:
        stopped = _where("interrupted", tune)
        report.write(tune.result(stopped))
        raise Interrupted(f"{stopped}; what was measured is in {out / 'report.md'}") from exc
    except TuneError as exc:
        report.write(tune.result(str(exc)))
        raise
    except BaseException as exc:
        report.write(tune.result(_where(f"stopped by an error ({exc})", tune)))
        raise
    return report.write(tune.result(stopped))


def _where(what: str, tune: _Tune) -> str:
    if tune.where is None:
        return f"{what} before the first candidate"
    num_parallel, users = tune.where
    at = f", {users} users" if users else " (starting the backend)"
    return f"{what} at NUM_PARALLEL={num_parallel}{at}"
