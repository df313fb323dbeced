"""Running one child in the foreground: its own process group, signals forwarded, none left.

A task or service that hands its work to a child (`invoke up` -> `python -m farm`) must stop
the child's whole tree when it is stopped itself: SIGINT and SIGTERM are forwarded to the
child's process group, and a group still alive `grace_s` later gets SIGKILL. The child runs
in its own group so that a signal meant for it reaches its own children too, even when it
dies before it could forward the signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import FrameType

GRACE_S = 4.0
_FORWARDED = (signal.SIGINT, signal.SIGTERM)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap_group(pgid: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM the group, wait up to `grace_s` for it to empty, then SIGKILL what is left."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)


def _wait(proc: subprocess.Popen[bytes], received: list[int], grace_s: float) -> int:
    """Wait for `proc`; once a signal was forwarded, give it `grace_s`, then kill its group."""
    killed_at: float | None = None
    while True:
        try:
            # Short waits: a signal handler runs between them, and the grace clock can start.
            return proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
        if received and killed_at is None:
            killed_at = time.monotonic() + grace_s
        if killed_at is not None and time.monotonic() >= killed_at:
            _signal_group(proc.pid, signal.SIGKILL)


def run_foreground(
    argv: Sequence[str], env: Mapping[str, str] | None = None, grace_s: float = GRACE_S
) -> int:
    """Run `argv` (a list, never a shell line) until it exits; return its exit status.

    While it runs, SIGINT/SIGTERM sent to this process are passed to the child's group. After
    a signal, the child has `grace_s` to exit before its group is killed; a detached farm
    (which starts its own sessions) is not in that group and survives, as intended.
    """
    proc = subprocess.Popen(list(argv), env=None if env is None else dict(env), process_group=0)
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        _signal_group(proc.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    try:
        code = _wait(proc, received, grace_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # Whatever the child left in its group (a grandchild that ignored the signal) goes too.
        if _group_alive(proc.pid):
            reap_group(proc.pid, grace_s)
    return 128 + received[0] if received and code < 0 else code
