"""Restarting the farm for each NUM_PARALLEL candidate, through the farm launcher.

Each candidate gets a farm of its own: `python -m farm up --detach` on free loopback ports with
a state folder inside the tune's result folder, so a farm the operator is running is never
touched. The launcher runs as a child process, as `invoke up` runs it: its detached children
belong to it, not to the tune. It pulls and warms the model; its one-line errors become tune
errors. `alive()` tells a backend that died mid-tune from a slow one; `stop()` is `down`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.tune.errors import BackendFailed, ModelMissing
from bench.tune.settings import TuneSettings
from farm.common.net import free_port
from farm.launch import children, lifecycle, state
from farm.launch.children import service_env
from farm.launch.settings import UpSettings
from farm.launch.state import FarmState
from farm.settings import SettingsError, to_argv
from farm.settings.load import validate

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RunningFarm:
    """A farm started for one candidate: where to send load, and how to find it again."""

    num_parallel: int
    state_dir: Path
    record: FarmState

    @property
    def url(self) -> str:
        """The proxy's URL (the farm as its users reach it)."""
        return self.record.front_url

    def alive(self) -> bool:
        """True while the proxy and every backend process still run."""
        pids = [(self.record.proxy_pid, self.record.proxy_create_time)]
        pids += [(b.pid, b.pid_create_time) for b in self.record.backends if b.pid]
        return all(children.find(pid, ct) is not None for pid, ct in pids if pid)


def up_settings(config: TuneSettings, num_parallel: int, state_dir: Path) -> UpSettings:
    """The launcher's settings for one candidate: the tune's model and mode, its own ports."""
    front = free_port(HOST)
    back = free_port(HOST)
    while back == front:
        back = free_port(HOST)
    values: dict[str, object] = {
        "model": config.model,
        "num_parallel": num_parallel,
        "mode": config.mode,
        "host": HOST,
        "back_host": HOST,
        "front_port": front,
        "back_port": back,
        "detach": True,
        "name": f"tune-np{num_parallel}",
        "state_dir": state_dir,
        # Not the operator's .env: a key or a NUM_PARALLEL there must not leak into a candidate.
        "env_file": state_dir / "launcher.env",
        # The simulator's store holds its catalogue already; a model it lacks must be named as
        # missing, not conjured by a pull. A real Ollama pulls what it lacks, as `invoke up` does.
        "pull": config.mode in ("auto", "docker", "local"),
        # Given as None so that an inherited FARM_API_KEY cannot lock the bench out of the
        # candidate's loopback-only proxy (`service_env` drops the variables of given settings).
        "api_key": None,
    }
    try:
        return validate(UpSettings, values)
    except SettingsError as exc:
        raise BackendFailed(f"the launcher refuses the tune's settings: {exc}") from exc


def _launcher_error(log_path: Path) -> str:
    """The launcher's one-line error (`python -m farm up: error: ...`), else its last line."""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    errors = [line.split("error: ", 1)[1] for line in lines if "error: " in line]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def start_farm(
    config: TuneSettings, num_parallel: int, state_dir: Path, environ: Mapping[str, str]
) -> RunningFarm:
    """Start (and warm) a farm with `num_parallel` slots; one-line errors for a missing model
    and for a backend that does not come up."""
    settings = up_settings(config, num_parallel, state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "launcher.log"
    argv = [sys.executable, "-m", "farm", "up", *to_argv(settings)]
    with log_path.open("wb") as log_file:
        code = subprocess.run(
            argv, stdout=log_file, stderr=subprocess.STDOUT, env=service_env(environ, settings)
        ).returncode
    record = state.load(state_dir) if code == 0 else None
    if record is not None:
        return RunningFarm(num_parallel, state_dir, record)
    reason = _launcher_error(log_path)
    if "is not on the backend" in reason or reason.startswith("pull "):
        pulled = " and cannot be pulled" if settings.pull else ""
        raise ModelMissing(
            f"model {config.model} is not on the {config.mode} backend{pulled}: "
            "check the name (`ollama list`) or pull it first"
        )
    raise BackendFailed(f"NUM_PARALLEL={num_parallel}: the backend did not start: {reason}")


def stop_farm(state_dir: Path) -> None:
    """Stop what the launcher started with `state_dir` (nothing when it left no state)."""
    stopped = lifecycle.down(state_dir)
    log.info("stopped %s", ", ".join(stopped) or "nothing")
