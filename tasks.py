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

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from bench.calibrate.settings import CalibrateSettings
from bench.fairness import FairBenchSettings
from bench.scale_settings import RelayScaleSettings
from bench.settings import BenchSettings, DemoSettings, ReportSettings
from bench.tune.settings import TuneSettings
from farm.common.foreground import run_foreground
from farm.common.tasks import service_task
from farm.gpu.settings import GpuSetupSettings, GpusSettings
from farm.keys.settings import (
    KeysAddSettings,
    KeysListSettings,
    KeysRevokeSettings,
    KeysRotateSettings,
    UsageSettings,
)
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
gpus = service_task(
    GpusSettings,
    "farm.gpu",
    verb=["gpus"],
    name="gpus",
    doc="List this host's NVIDIA GPUs (NVML): memory free/total, MIG, processes, versions.",
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
tune = service_task(
    TuneSettings,
    "bench.tune",
    name="tune",
    doc="Find the NUM_PARALLEL serving the most users within TTFT/TPOT p95 SLOs (with 95% CIs).",
)
calibrate = service_task(
    CalibrateSettings,
    "bench.calibrate",
    name="calibrate",
    doc="Fit the simulator's timing model to a backend (profile TOML); --validate FILE checks one.",
)
site = service_task(
    SiteSettings,
    "farm.webdemo",
    name="site",
    doc="Serve the HTTPS demo page (prints its URL, default https://127.0.0.1:8443/).",
)
keys_add = service_task(
    KeysAddSettings,
    "farm.keys",
    verb=["add"],
    name="add",
    doc="Add a named API key (`keys.add NAME [--max-streams N ...]`); printed once.",
)
keys_list = service_task(
    KeysListSettings, "farm.keys", verb=["list"], name="list", doc="List the named API keys."
)
keys_revoke = service_task(
    KeysRevokeSettings,
    "farm.keys",
    verb=["revoke"],
    name="revoke",
    doc="Revoke a key: its next request gets 401.",
)
keys_rotate = service_task(
    KeysRotateSettings,
    "farm.keys",
    verb=["rotate"],
    name="rotate",
    doc="Give a key a new secret (shown once); the old one stops working.",
)
usage = service_task(
    UsageSettings,
    "farm.keys",
    verb=["usage"],
    name="usage",
    doc="Show what each key (or model, or day) used: requests, tokens, TTFT.",
)
fair_bench = service_task(
    FairBenchSettings,
    "bench.fairness",
    name="fair-bench",
    doc="Benchmark fair slots: a light tenant beside a heavy one, fair queue on vs off.",
)
relay_bench = service_task(
    RelayScaleSettings,
    "bench.relay_scale",
    name="relay-bench",
    doc="Benchmark the relay at scale: 1, 9, 256 streams over the local NKN node, with loss.",
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


# `invoke keys.add NAME`, `keys.list` (also plain `invoke keys`), `keys.revoke`, `keys.rotate`:
# invoke has no optional positionals, so the key verbs are a sub-collection, not one task.
_KEY_VERBS = (keys_add, keys_list, keys_revoke, keys_rotate)
ns = Collection(*(t for t in list(vars().values()) if isinstance(t, Task) and t not in _KEY_VERBS))
_keys = Collection("keys", *_KEY_VERBS)
_keys.default = "list"
ns.add_collection(_keys)
