"""`TuneSettings`: the settings of `python -m bench.tune` (`invoke tune`), declared once.

Durations take the bench's units (`2s`, `100ms`, `20m`) and are held in seconds. The load a
level applies is the bench's own (prompt set, `max_tokens`, seed, one warm-up answer per user),
so a tune and a bench run measure the same work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator

from bench.settings import duration_s, stream_counts
from farm.settings import ServiceSettings, setting
from farm.sim.errors import ProfileError
from farm.sim.profile import read_profile

Mode = Literal["auto", "docker", "local", "sim", "engine"]


class TuneSettings(ServiceSettings):
    """One tune: the model, the SLOs, the NUM_PARALLEL candidates and the time it may take."""

    prog = "python -m bench.tune"
    summary = (
        "Find the NUM_PARALLEL that serves the most concurrent streaming users within TTFT and "
        "TPOT p95 SLOs (restarting the backend per candidate), with 95% CIs and a report."
    )

    model: str = setting(help="MODEL[:tag] to serve and measure, e.g. gemma3:4b")
    slo_ttft_p95: float = setting(
        2.0, help="SLO on the p95 time to first token, e.g. 2s", metavar="TIME"
    )
    slo_tpot_p95: float = setting(
        0.1, help="SLO on the p95 time per output token, e.g. 100ms", metavar="TIME"
    )
    num_parallel: tuple[int, ...] = setting(
        (1, 2, 4, 8, 16), help="NUM_PARALLEL candidates, a comma list", metavar="N,N…"
    )
    max_users: int = setting(128, help="most concurrent users a level may try", ge=1)
    budget: float = setting(1200.0, help="time the whole tune may take, e.g. 20m", metavar="TIME")
    level_time: float = setting(
        60.0,
        help="measuring time per user count, e.g. 60s (up to twice that until 8 answers)",
        metavar="TIME",
    )
    min_requests: int = setting(30, help="answers a level needs before it can clearly pass", ge=5)
    mode: Mode = setting(
        "auto",
        help="backend the launcher starts: docker, local `ollama serve`, sim (synthetic), "
        "engine (the simulator on real weights, CPU) or auto",
    )
    backend_url: str | None = setting(
        None, help="an Ollama already running (refused: it cannot be restarted per candidate)"
    )
    twin: Path | None = setting(
        None,
        help="a calibrated simulator profile (`invoke calibrate`): search it first, then "
        "confirm only its best candidates on the real backend",
        metavar="PROFILE",
    )
    apply: bool = setting(
        False, help="write the chosen num_parallel into --env-file (shows a diff)"
    )
    env_file: Path = setting(Path(".env"), help="the launcher's .env that --apply edits")
    prompts: str = setting("mixed", help="short|medium|long|mixed or a JSONL file (as bench)")
    prompt_count: int = setting(64, help="size of a built-in prompt set", ge=1)
    max_tokens: int = setting(128, help="num_predict / max_tokens", ge=1)
    seed: int = setting(1, help="seed for prompts, sampling and the bootstrap")
    out: Path | None = setting(None, help="result folder (default results/tune-<ts>-<model>)")
    quiet: bool = setting(False, help="no progress bar")

    @field_validator("slo_ttft_p95", "slo_tpot_p95", "budget", "level_time", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return duration_s(value)

    @field_validator("num_parallel", mode="before")
    @classmethod
    def _candidates(cls, value: object) -> object:
        return stream_counts(value)

    @model_validator(mode="after")
    def _fits_together(self) -> TuneSettings:
        if not self.num_parallel:
            raise ValueError("give at least one --num-parallel candidate")
        if self.level_time > self.budget:
            raise ValueError("--level-time is longer than --budget")
        if self.twin is not None:
            if not self.twin.is_file():
                raise ValueError(
                    f"--twin {self.twin}: no such profile (make one: invoke calibrate)"
                )
            try:
                read_profile(self.twin)
            except ProfileError as exc:
                raise ValueError(f"--twin: {exc}") from None
        return self

    @property
    def candidates(self) -> tuple[int, ...]:
        """The NUM_PARALLEL values to try, smallest first (a failing single user stops early)."""
        return tuple(sorted(self.num_parallel))

    def record(self) -> dict[str, Any]:
        """The settings as JSON for tune.json."""
        return self.model_dump(mode="json")
