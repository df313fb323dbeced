"""Fixtures for the launcher: a sandboxed environment, a test-only `ollama` on PATH whose
`serve` runs the simulator, a fake Docker engine, and a runner for `python -m farm`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fake_engine import FakeEngine

ROOT = Path(__file__).resolve().parents[3]
FAKE_OLLAMA = """#!{python}
# Test-only `ollama`: records how it was started, then `serve` becomes the simulator, which
# reads the same OLLAMA_* variables as Ollama (OLLAMA_MODELS becomes the simulated store).
import json, os, sys
with open(os.environ["FAKE_OLLAMA_LOG"], "a") as fh:
    env = {{k: v for k, v in os.environ.items() if k.startswith("OLLAMA_")}}
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": env, "cuda": gpus}}) + "\\n")
if sys.argv[1:2] != ["serve"]:
    print("ollama version is 0.0.0 (test stand-in)")
    sys.exit(0)
# What Ollama logs at start-up on a host without a usable GPU.
print('time=2026-01-01T00:00:00Z level=INFO source=types.go:130 msg="inference compute" '
      'id=cpu library=cpu compute="" name=cpu total="62.7 GiB"', file=sys.stderr, flush=True)
if "OLLAMA_MODELS" in os.environ:
    os.environ["FARM_SIM_MODELS"] = os.environ["OLLAMA_MODELS"]
os.execv(sys.executable, [sys.executable, "-m", "farm.sim"])
"""


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports that were free a moment ago (consecutive not guaranteed)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def free_run(n: int) -> tuple[int, int]:
    """(front, back): a front port and `n` consecutive back ports from `back`, all free now."""
    while True:
        front, back = free_ports(2)
        run = range(back, back + n)
        if back + n <= 65536 and front not in run and all(port_is_free(p) for p in run):
            return front, back


def port_is_free(port: int) -> bool:
    """True if 127.0.0.1:port can be bound now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Farm:
    """A sandbox to run `python -m farm` in: cwd, env, state dir, fake ollama's call log."""

    cwd: Path
    env: dict[str, str]
    bin: Path

    @property
    def state_file(self) -> Path:
        return Path(self.env["FARM_STATE_DIR"]) / "state.json"

    def state(self) -> dict[str, object]:
        return json.loads(self.state_file.read_text())

    def ollama_calls(self) -> list[dict[str, object]]:
        log = Path(self.env["FAKE_OLLAMA_LOG"])
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    def install_ollama(self) -> None:
        path = self.bin / "ollama"
        path.write_text(FAKE_OLLAMA.format(python=sys.executable))
        path.chmod(0o755)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "farm", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def invoke(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run an operator verb the way users do: `invoke <task> ...` from the project root."""
        return subprocess.run(
            [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "farm", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    """A clean sandbox; whatever a test leaves running is stopped with `down` afterwards."""
    bindir, home, cwd = tmp_path / "bin", tmp_path / "home", tmp_path / "work"
    for d in (bindir, home, cwd):
        d.mkdir()
    base_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not (Path(p) / "ollama").exists()
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OLLAMA_", "FARM_", "DOCKER_", "PYTEST_"))
    }
    env.update(
        PATH=f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{base_path}",
        HOME=str(home),
        FARM_STATE_DIR=str(cwd / ".farm"),
        FAKE_OLLAMA_LOG=str(tmp_path / "ollama-calls.jsonl"),
        DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock",
        FARM_READY_TIMEOUT="30",
        # A fast simulator: the tests exercise process handling, not timing.
        FARM_SIM_LOAD_MS="20",
        FARM_SIM_DECODE_MS="2",
        FARM_SIM_PULL_MS="20",
        NO_PROXY="127.0.0.1,localhost,::1",
    )
    sandbox = Farm(cwd, env, bindir)
    yield sandbox
    if sandbox.state_file.exists():
        sandbox.run("down", timeout=60)


@pytest.fixture
def engine(farm: Farm, tmp_path: Path) -> Iterator[FakeEngine]:
    """A fake Docker engine; the farm sandbox points DOCKER_HOST at it."""
    workdir = tmp_path / "engine"
    workdir.mkdir()
    with FakeEngine(workdir, dict(farm.env)) as fake:
        farm.env["DOCKER_HOST"] = fake.url
        yield fake
        if farm.state_file.exists():
            farm.run("down", timeout=60)
