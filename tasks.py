"""Operator verbs for ollama-farm (`invoke --list`).

Each task is generated from its service's settings class (`farm.common.tasks`): the options,
their help and which ones repeat are the service's declarations, and the task runs
`python -m <service>` with those options as an argv list, in the foreground, in its own
process group (Ctrl-C and SIGTERM reach the whole tree; nothing is left behind).
"""

from __future__ import annotations

import shlex
import shutil
import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from bench.settings import BenchSettings, DemoSettings, ReportSettings
from farm.common.foreground import run_foreground
from farm.common.tasks import service_task
from farm.gpu.settings import GpuSetupSettings
from farm.launch.settings import DownSettings, LogsSettings, StatusSettings, UpSettings
from farm.sim.settings import SimSettings
from farm.webdemo.settings import SiteSettings
from relay.localnode.settings import LocalNodeSettings
from relay.settings import RelaySettings

sim = service_task(
    SimSettings,
    "farm.sim",
    name="sim",
    doc="Run the Ollama simulator (synthetic, or real weights with --engine llamacpp).",
)
gpu_setup = service_task(
    GpuSetupSettings,
    "farm.gpu",
    name="gpu-setup",
    doc="Prepare this Ubuntu 24.04 host's Docker for NVIDIA GPUs (run as root; idempotent).",
)
up = service_task(
    UpSettings,
    "farm",
    verb=["up"],
    name="up",
    doc="Start one warm Ollama backend with N slots and the proxy in front of it.",
)
down = service_task(
    DownSettings, "farm", verb=["down"], name="down", doc="Stop what `invoke up` started."
)
status = service_task(
    StatusSettings,
    "farm",
    verb=["status"],
    name="status",
    doc="Show backends, loaded model, slots, in-flight streams and GPU memory.",
)
logs = service_task(LogsSettings, "farm", verb=["logs"], name="logs", doc="Follow a backend's log.")
nkn_local = service_task(
    LocalNodeSettings,
    "relay.localnode",
    name="nkn-local",
    doc="Run a local NKN test node (not the real network) for the relay, the site and the bench.",
)
relay = service_task(
    RelaySettings,
    "relay",
    name="relay",
    doc="Run the NKN relay in front of the farm proxy (prints `NKN ready: <address>`).",
)
bench = service_task(
    BenchSettings,
    "bench",
    name="bench",
    doc="Benchmark the farm with parallel streams (locust) and write a report.",
)
report = service_task(
    ReportSettings,
    "bench",
    verb=["report"],
    name="report",
    doc="Re-render a benchmark report, or compare several runs side by side.",
)
demo = service_task(
    DemoSettings,
    "bench",
    verb=["demo"],
    name="demo",
    doc="Farm + local NKN relay + benchmark of every path, then tear down (first thing to run).",
)
site = service_task(
    SiteSettings,
    "farm.webdemo",
    name="site",
    doc="Serve the HTTPS demo page (prints its URL, default https://127.0.0.1:8443/).",
)


def _run(argv: list[str]) -> None:
    code = run_foreground(argv)
    if code != 0:
        raise Exit(code=code)


@task
def setup(c: Context) -> None:
    """Install the pinned Node packages of the NKN bridge and of the llama.cpp engine (`npm ci`)."""
    if shutil.which("npm") is None:
        raise Exit("npm not found: install Node.js >= 18 and npm (e.g. apt-get install nodejs npm)")
    _run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", "relay/bridge"])
    # `--omit=optional`: the prebuilt CPU binary only, not every CUDA build (about 650 MB more).
    engine = "farm/sim/engines/llamacpp"
    _run(["npm", "ci", "--omit=optional", "--no-audit", "--no-fund", "--prefix", engine])


@task(help={"args": 'pytest flags, quoted (e.g. "-k proxy -x"); or give them after `--`'})
def test(c: Context, args: str = "") -> None:
    """Run the test suite through nox (the README's test command, which CI runs)."""
    # invoke hands over `--args` and the text after `--` as strings: parse them, never re-join.
    pytest_args = shlex.split(args) + shlex.split(c.remainder)
    _run(
        [sys.executable, "-m", "nox", "-s", "tests", *(["--", *pytest_args] if pytest_args else [])]
    )
