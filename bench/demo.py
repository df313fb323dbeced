"""The demo: a whole farm on this machine, benchmarked over every path, then torn down.

`run_demo` starts the farm launcher (`python -m farm up --mode sim` by default: the synthetic
Ollama simulator, labelled as such), the local NKN test node, and the relay on that node in
front of the farm's proxy; then it benchmarks direct, proxy and NKN on the same prompts and
returns the report. Every process it started is stopped on the way out — also on Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.config import BenchConfig
from bench.errors import TargetError
from bench.report import Report
from bench.run import ProgressFn, run_bench
from farm.common.net import free_port
from relay.localnode.child import LocalNode

log = logging.getLogger(__name__)
_RELAY_READY = re.compile(r"NKN ready: (\S+)")


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """What the demo runs: farm mode and model, streams, how long each path is measured."""

    mode: str = "sim"
    model: str = "gemma3:4b"
    streams: int = 9
    duration_s: float = 15.0
    out: Path | None = None
    ready_timeout_s: float = 90.0


def _stop(proc: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop on SIGTERM; killing it", name)
            proc.kill()
            proc.wait()


@contextmanager
def _process(
    argv: list[str], name: str, log_path: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child with its output in `log_path`; stop it when the block ends."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            _stop(proc, name)


def _wait_health(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log_path: Path) -> None:
    """Poll the proxy's /_health until ready; fail early when the launcher exits."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TargetError(
                    f"the farm exited ({proc.returncode}): {log_path.read_text()[-800:]}"
                )
            try:
                if client.get(url + "/_health").json().get("ready"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
    raise TargetError(f"the farm was not ready within {timeout_s:.0f}s; see {log_path}")


def _wait_relay(log_path: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The relay's NKN address from its `NKN ready: <address>` line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _RELAY_READY.search(log_path.read_text(errors="replace"))
        if match:
            return match.group(1)
        if proc.poll() is not None:
            raise TargetError(
                f"the relay exited ({proc.returncode}): {log_path.read_text()[-800:]}"
            )
        time.sleep(0.2)
    raise TargetError(f"the relay did not join the local NKN node within {timeout_s:.0f}s")


def run_demo(plan: DemoPlan, on_progress: ProgressFn | None = None) -> Report:
    """Bring everything up, benchmark direct/proxy/NKN with `plan.streams` streams, tear down."""
    work = Path(tempfile.mkdtemp(prefix="farm-demo-"))
    front, back = free_port(), free_port()
    env = {**os.environ, "FARM_STATE_DIR": str(work / "farm")}
    with ExitStack() as stack:
        farm = stack.enter_context(
            _process(
                [
                    sys.executable,
                    "-m",
                    "farm",
                    "up",
                    "--mode",
                    plan.mode,
                    "--model",
                    plan.model,
                    "--num-parallel",
                    str(plan.streams),
                    "--front-port",
                    str(front),
                    "--back-port",
                    str(back),
                    "--host",
                    "127.0.0.1",
                ],  # fmt: skip
                "farm",
                work / "farm.log",
                env,
            )
        )
        proxy_url = f"http://127.0.0.1:{front}"
        node = stack.enter_context(LocalNode())
        relay_env = {
            **env,
            "NKN_RPC_SERVER_ADDR": node.rpc_url,
            "RELAY_TARGETS": json.dumps({"ollama": proxy_url}),
            # One relay worker per stream: the default 4 would queue or refuse the rest.
            "RELAY_WORKERS": str(plan.streams),
        }
        relay = stack.enter_context(
            _process(
                [sys.executable, "-m", "relay", "--env-file", str(work / "relay.env")],
                "relay",
                work / "relay.log",
                relay_env,
            )
        )
        _wait_health(proxy_url, farm, plan.ready_timeout_s, work / "farm.log")
        address = _wait_relay(work / "relay.log", relay, plan.ready_timeout_s)
        config = BenchConfig(
            targets=("direct", "proxy", "nkn"),
            streams=(plan.streams,),
            proxy_url=proxy_url,
            relay_address=address,
            nkn_rpc_url=node.rpc_url,
            duration_s=plan.duration_s,
            prompts="mixed",
            max_tokens=64,
            out=plan.out,
        )
        report = run_bench(config, on_progress)
    return report


def shield_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally` blocks tear the farm down."""

    def handler(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
