"""The locustfile `bench.run` starts: concrete users, bench command-line options, run hooks.

With `bench/users.py`, the only module that imports locust or gevent. Locust loads this file by
path and puts `bench/` first on `sys.path`; the init hook takes it off again so that modules
here (config, record, ...) can never shadow an installed package of the same name.
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

from bench.runtime import BenchRuntime, RunSpec
from bench.users import HttpStreamUser, NknStreamUser

log = logging.getLogger(__name__)
_HERE = str(Path(__file__).resolve().parent)
# The hub-lag probe sleeps this long and records how late it wakes up (bench spec §3.7).
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
    parser.add_argument("--bench-spec", default="", help="run spec JSON written by bench.run")
    parser.add_argument("--bench-worker", type=int, default=0, help="this process's number")
    parser.add_argument("--bench-quota", type=int, default=0, help="max requests (0: no cap)")
    parser.add_argument("--bench-rate-share", type=float, default=1.0, help="share of --rate")


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_kw: Any) -> None:
    while _HERE in sys.path:
        sys.path.remove(_HERE)
    opts = environment.parsed_options
    if opts is None or not opts.bench_spec or isinstance(environment.runner, MasterRunner):
        return
    spec = RunSpec.from_json(Path(opts.bench_spec).read_text(encoding="utf-8"))
    runtime = BenchRuntime(
        spec,
        worker_number=opts.bench_worker,
        quota=opts.bench_quota or None,
        rate_share=opts.bench_rate_share,
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
        lags_s.sort()
        runtime.write_health(
            {
                "t_unix_s": time.time(),
                "worker_id": runtime.worker_id,
                "cpu_pct": proc.cpu_percent(None),
                "hub_lag_p50_ms": lags_s[len(lags_s) // 2] * 1000,
                "hub_lag_max_ms": lags_s[-1] * 1000,
                "in_flight": runtime.in_flight,
                "loadavg_1m": os.getloadavg()[0],
                "cpu_count": os.cpu_count() or 1,
                "done": runtime.done,
                "errors": runtime.errors,
                "tokens": runtime.tokens,
            }
        )
