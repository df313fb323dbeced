"""A foreground child runs in its own process group, gets the signals its parent gets, and
leaves nothing behind: a grandchild that ignores SIGTERM is killed after the grace period."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

# A parent that runs `run_foreground` on a child that starts a grandchild; the grandchild (and,
# with `stubborn`, the child too) ignores SIGTERM.
_PARENT = textwrap.dedent(
    """
    import sys
    from farm.common.foreground import run_foreground
    child = '''
    import signal, subprocess, sys, time
    stubborn = sys.argv[1] == "stubborn"
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    grandchild = subprocess.Popen([sys.executable, "-c", code])
    open(sys.argv[2], "w").write(str(grandchild.pid))
    time.sleep(600)
    '''
    sys.exit(run_foreground([sys.executable, "-c", child, sys.argv[1], sys.argv[2]], grace_s=1.0))
    """
)


def _tree_after_signal(tmp_path: Path, mode: str, sig: signal.Signals) -> tuple[int, list[int]]:
    pid_file = tmp_path / "grandchild.pid"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, mode, str(pid_file)])
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the grandchild never started"
        time.sleep(0.05)
    pids = [parent.pid, *(p.pid for p in psutil.Process(parent.pid).children(recursive=True))]
    parent.send_signal(sig)
    code = parent.wait(timeout=10)
    gone_deadline = time.monotonic() + 5
    while time.monotonic() < gone_deadline:
        alive = [pid for pid in pids if psutil.pid_exists(pid) and _running(pid)]
        if not alive:
            break
        time.sleep(0.05)
    return code, [pid for pid in pids if psutil.pid_exists(pid) and _running(pid)]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("mode", ["polite", "stubborn"])
def test_signal_to_the_parent_leaves_no_process_within_five_seconds(
    tmp_path: Path, mode: str, sig: signal.Signals
) -> None:
    code, alive = _tree_after_signal(tmp_path, mode, sig)
    assert alive == []
    assert code != 0


def test_exit_status_of_the_child_is_returned(tmp_path: Path) -> None:
    from farm.common.foreground import run_foreground

    assert run_foreground([sys.executable, "-c", "raise SystemExit(3)"]) == 3
