"""The long-running invoke tasks stop their whole process tree on a real signal.

Each task is started as a user would (`python -m invoke TASK ...` in the checkout), waits
until its server answers, then gets SIGTERM or SIGINT; within 5 s no process of its tree is
left in the process table.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from farm.common.net import free_port

ROOT = Path(__file__).resolve().parents[1]


def _tasks(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """task -> (invoke arguments, URL that answers once it serves)."""
    sim, site, node, front, back = (free_port() for _ in range(5))
    return {
        "sim": (["sim", "--port", str(sim)], f"http://127.0.0.1:{sim}/"),
        "site": (["site", "--port", str(site)], f"https://127.0.0.1:{site}/"),
        "nkn-local": (["nkn-local", "--port", str(node)], f"http://127.0.0.1:{node}/"),
        "up": (
            ["up", "--model", "gemma3:4b", "--mode", "sim", "--host", "127.0.0.1"]
            + ["--front-port", str(front), "--back-port", str(back)],
            f"http://127.0.0.1:{front}/_health",
        ),
    }


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def _wait_serving(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the task exited early with {proc.returncode}"
        try:
            httpx.get(url, verify=False, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("name", ["sim", "site", "nkn-local", "up"])
def test_a_signal_to_the_task_leaves_no_process_behind(
    tmp_path: Path, name: str, sig: signal.Signals
) -> None:
    args, url = _tasks(tmp_path)[name]
    env = {**psutil.Process().environ(), "FARM_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_serving(url, proc, timeout_s=60)
        procs = _tree(proc.pid)
        assert len(procs) >= 2, "the task should run its service as a child"
        proc.send_signal(sig)
        deadline = time.monotonic() + 5
        while _alive(procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.pid for p in _alive(procs)] == []
    finally:
        for p in _alive(_tree(proc.pid)) if proc.poll() is None else []:
            p.kill()
        proc.wait(timeout=10)
