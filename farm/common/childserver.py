"""A server running as a child process on loopback, for tests and benchmarks.

The shared part of the project's test servers (`ProxyServer`, `SiteServer`, `LocalNode`, the
relay process of the browser tests): a free port, polling a condition with a deadline, and a
stop that asks first (SIGTERM) and insists after a grace period (SIGKILL), always reaping.
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

POLL_INTERVAL_S = 0.05


def poll_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it is true; raise TimeoutError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(POLL_INTERVAL_S)


class ChildServer(ABC):
    """Owns one child process; subclasses start it in `start()` and set `self._proc`."""

    #: How long `stop()` waits after SIGTERM before it sends SIGKILL.
    stop_grace_s = 5.0

    def __init__(self) -> None:
        self._proc: subprocess.Popen[Any] | None = None

    @property
    def pid(self) -> int:
        """The child's process id (e.g. for RSS measurements)."""
        if self._proc is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._proc.pid

    @abstractmethod
    def start(self) -> Self:
        """Start the child and return once it serves."""

    def exited(self) -> int | None:
        """The child's exit status once it has ended, else None."""
        return None if self._proc is None else self._proc.poll()

    def kill(self) -> None:
        """SIGKILL the child at once (a server dying under its clients) and reap it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self) -> None:
        """SIGTERM, SIGKILL after `stop_grace_s`, reap, and close the pipes we opened."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.stop_grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
