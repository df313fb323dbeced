"""Child processes the farm starts (ollama serve, the simulator, the proxy) and stops again.

Each child runs in its own session, so a terminal's Ctrl-C reaches only the launcher (which then
stops the children in order) and a `--detach`ed farm outlives the launcher. Output goes to a log
file under the state dir, which `logs` follows. A child found again later through the state file
is identified by pid *and* start time, so a recycled pid is never signalled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from farm.settings import ServiceSettings, child_env, specs

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The launcher's environment as its children inherit it (PATH, HOME, ...): without the
    OLLAMA_* variables, which the farm sets per backend rather than passing on by accident."""
    return {k: v for k, v in environ.items() if not k.startswith("OLLAMA_")}


def service_env(base_env: Mapping[str, str], settings: ServiceSettings) -> dict[str, str]:
    """The environment of a child service started with `to_argv(settings)`.

    `to_argv` leaves out values equal to the child's defaults, so an inherited variable for a
    setting the parent chose (FARM_API_KEY, FARM_PROXY_HOST, ...) would win over that choice:
    the variables of every setting given to `settings` are dropped, and `child_env(settings)`
    adds back those that must travel by environment (secrets, environment-only settings).
    The child's other variables still reach it, so it can be tuned through its environment.
    """
    chosen = {
        key
        for spec in specs(type(settings))
        if spec.name in settings.model_fields_set
        for key in spec.env
    }
    env = {k: v for k, v in base_env.items() if k not in chosen}
    env.update(child_env(settings))
    return env


class Child:
    """One supervised subprocess with its output appended to `log_path`."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Spawn it; OSError (e.g. executable not found) propagates for the caller to translate."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.debug("started pid %s: %s", self._proc.pid, " ".join(self.argv))

    def alive(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and self._proc.poll() is None

    def create_time(self) -> float | None:
        """The kernel's start time for the pid (pairs with the pid in the state file)."""
        if self._proc is None:
            return None
        try:
            return float(psutil.Process(self._proc.pid).create_time())
        except psutil.Error:
            return None

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines of its log."""
        return tail(self.log_path, lines)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a grace period; reap it."""
        if self._proc is None:
            return
        stop_group(self._proc.pid)
        try:
            self._proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=STOP_GRACE_S)


def tail(path: Path, lines: int = 20) -> str:
    """Last lines of a text file; '' if unreadable."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def stop_group(pid: int) -> None:
    """Ask the child's process group to terminate (children run as session leaders)."""
    _signal_group(pid, signal.SIGTERM)


def find(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """The live process recorded as (pid, start time), or None if it is gone or was recycled."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def wait_gone(proc: psutil.Process, timeout_s: float) -> bool:
    """Wait until `proc` has exited. It need not be our child, and its parent may not have
    reaped it yet: a zombie counts as gone (psutil's wait would block on it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def stop_recorded(pid: int | None, create_time: float | None, group: bool = True) -> bool:
    """Stop a process found through the state file (its whole group for our session-leader
    children); True if one was running."""
    proc = find(pid, create_time)
    if proc is None:
        return False
    if group:
        _signal_group(proc.pid, signal.SIGTERM)
    else:
        proc.terminate()
    if not wait_gone(proc, STOP_GRACE_S * 3):
        if group:
            _signal_group(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        wait_gone(proc, STOP_GRACE_S)
    return True
