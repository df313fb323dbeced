"""The locustfile `bench.run` starts: concrete users, bench command-line options, run hooks.

With `bench/users.py`, the only module that imports locust or gevent. Locust loads this file by
path and puts `bench/` first on `sys.path`; the init hook takes it off again so that modules
here (settings, record, ...) can never shadow an installed package of the same name.

Locust's parser owns a locust process's command line, so the bench's own options are declared
in `bench.child_settings.WorkerSettings` and added to that parser from the declaration.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import events, task
from locust.runners import MasterRunner

from bench.child_settings import WorkerSettings
from bench.quantiles import quantile
from bench.runtime import BenchRuntime, RunSpec
from bench.users import HttpStreamUser, NknStreamUser
from farm.settings import process_environ, specs
from farm.settings.argv import help_text
from farm.settings.load import validate

log = logging.getLogger(__name__)
_HERE = str(Path(__file__).resolve().parent)
# The hub-lag probe sleeps this long and records how late it wakes up: whatever else held the
# CPU (other greenlets, other processes) delays every measured time by as much.
_PROBE_S = 0.010


class HttpStream(HttpStreamUser):
    """Streams from the backend or the proxy over HTTP."""

    @task
    def generate(self) -> None:
        """One request, then the next (closed loop) or the next arrival (open loop)."""
        self.run_one()


class NknStream(NknStreamUser):
    """Streams through the NKN relay with the relay peer client."""

    @task
    def generate(self) -> None:
        """One request through the relay."""
        self.run_one()


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _add_options(parser: Any) -> None:
    # Every option defaults to None ("not given"): `WorkerSettings` holds the defaults.
    for spec in specs(WorkerSettings):
        parser.add_argument(spec.flag, default=None, help=help_text(spec))


def worker_settings(options: Any) -> WorkerSettings:
    """The bench's options from locust's parsed options, validated (SettingsError: one line)."""
    given = {s.name: getattr(options, s.name, None) for s in specs(WorkerSettings)}
    return validate(WorkerSettings, {k: v for k, v in given.items() if v is not None})


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_kw: Any) -> None:
    while _HERE in sys.path:
        sys.path.remove(_HERE)
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, MasterRunner):
        return
    options = worker_settings(opts)
    if options.bench_spec is None:
        return
    text = options.bench_spec.read_text(encoding="utf-8")
    # The run spec carries the settings as argv; their secrets come in this environment.
    spec = RunSpec.from_json(text, process_environ())
    runtime = BenchRuntime(
        spec,
        worker_number=options.bench_worker,
        quota=options.bench_quota or None,
        rate_share=options.bench_rate_share,
    )
    environment.bench_runtime = runtime
    gevent.spawn(_monitor, runtime)


def _monitor(runtime: BenchRuntime) -> None:
    """Once a second: this process's CPU, the gevent hub's typical and worst wake-up lag (a
    greenlet sleeping 10 ms, late by how long other greenlets or other processes held the CPU),
    and the in-flight count."""
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        second_end = time.perf_counter() + 1.0
        lags_s: list[float] = []
        while time.perf_counter() < second_end:
            before = time.perf_counter()
            gevent.sleep(_PROBE_S)
            lags_s.append(time.perf_counter() - before - _PROBE_S)
        runtime.write_health(
            {
                "t_unix_s": time.time(),
                "worker_id": runtime.worker_id,
                "cpu_pct": proc.cpu_percent(None),
                "hub_lag_p50_ms": quantile(lags_s, 0.5) * 1000,
                "hub_lag_max_ms": max(lags_s) * 1000,
                "in_flight": runtime.in_flight,
                "loadavg_1m": os.getloadavg()[0],
                "cpu_count": os.cpu_count() or 1,
                "done": runtime.done,
                "errors": runtime.errors,
                "tokens": runtime.tokens,
            }
        )
