"""The demo: a whole farm on this machine, benchmarked over every path, then torn down.

`run_demo` starts the farm launcher (`python -m farm up --mode engine` by default: real
weights, Gemma 3 270M base on the simulator's llama.cpp engine, on the CPU; `--mode sim` for
the synthetic simulator, labelled as such), the local NKN test node, and the relay on that
node in front of the farm's proxy; then it benchmarks direct, proxy and NKN on the same
prompts and returns the report. Every process it started is stopped on the way out — also on
Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.errors import TargetError
from bench.report import Report
from bench.run import ProgressFn, run_bench
from bench.settings import BenchSettings, DemoSettings
from farm.common.net import free_port
from farm.launch.settings import UpSettings
from farm.settings import child_env, to_argv
from farm.sim.engines.llamacpp.listing import MODEL_NAME as ENGINE_MODEL
from relay.localnode.child import LocalNode
from relay.settings import RelaySettings

log = logging.getLogger(__name__)
_RELAY_READY = re.compile(r"NKN ready: (\S+)")
READY_TIMEOUT_S = 90.0
# The real engine on 2 CPU cores: sequences of 2048 tokens hold the longest bench prompt,
# short prompts keep a newcomer's first TTFT about a second, and 24-token answers let every
# one of 9 streams finish a few requests in a 15 s window (a few tokens/s each, all paths
# sharing the 2 cores).
ENGINE_CTX = 2048
ENGINE_PROMPTS = "short"
ENGINE_MAX_TOKENS = 24
# One answer streamed live before the benchmark, so a newcomer sees the model's own text.
SAMPLE_PROMPT = "The three things every traveller to Paris should see are"
SAMPLE_TOKENS = 40
SampleFn = Callable[[str], None]


def stream_sample(proxy_url: str, model: str, on_text: SampleFn) -> None:
    """Stream one answer through the proxy, handing each piece of text to `on_text` as it
    arrives; a failure here is reported in the text and never stops the demo."""
    body = {
        "model": model,
        "prompt": SAMPLE_PROMPT,
        "options": {"num_predict": SAMPLE_TOKENS, "temperature": 0.7, "seed": 7},
    }
    started = time.perf_counter()
    first: float | None = None
    try:
        with httpx.stream(
            "POST", proxy_url + "/api/generate", json=body, timeout=60.0, trust_env=False
        ) as response:
            on_text(f"demo: a first answer, streamed live through the proxy:\n{SAMPLE_PROMPT}")
            for line in response.iter_lines():
                chunk = json.loads(line) if line.strip() else {}
                if chunk.get("response"):
                    first = first or time.perf_counter()
                    on_text(chunk["response"])
                if chunk.get("error"):
                    on_text(f" [error: {chunk['error']}]")
    except (httpx.HTTPError, ValueError) as exc:
        on_text(f" [sample failed: {exc}]")
    ttft = f"TTFT {(first - started) * 1000:.0f} ms" if first else "no tokens"
    on_text(f"\n({ttft}, through the proxy)\n")


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
    argv: list[str], name: str, log_path: Path, env: Mapping[str, str]
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


def on_engine(mode: str) -> bool:
    """Whether the farm runs the real engine (`--mode engine`)."""
    return mode == "engine"


def demo_model(plan: DemoSettings) -> str:
    """The model served: the engine's own one in engine mode, else the chosen one."""
    return ENGINE_MODEL if on_engine(plan.mode) else str(plan.model)


def farm_settings(plan: DemoSettings, work: Path) -> UpSettings:
    """The farm the demo starts: one backend with a slot per stream, on loopback ports."""
    values: dict[str, Any] = {
        "mode": plan.mode,
        "model": demo_model(plan),
        "num_parallel": plan.streams,
        "front_port": free_port(),
        "back_port": free_port(),
        "host": "127.0.0.1",
        "state_dir": work / "farm",
    }
    if on_engine(plan.mode):
        values["ctx"] = ENGINE_CTX
    return UpSettings(**values)


def relay_settings(work: Path, rpc_url: str, proxy_url: str, streams: int) -> RelaySettings:
    """The relay the demo starts on the local NKN node, in front of the farm's proxy."""
    return RelaySettings(
        env_file=work / "relay.env",
        nkn_rpc=(rpc_url,),
        targets={"ollama": proxy_url},
        # One relay worker per stream: the default 4 would queue or refuse the rest.
        workers=streams,
    )


def run_demo(
    plan: DemoSettings,
    environ: Mapping[str, str],
    on_progress: ProgressFn | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    on_sample: SampleFn | None = None,
) -> Report:
    """Bring everything up, benchmark direct/proxy/NKN with `plan.streams` streams, tear down.

    `environ` is the environment the children start from (the entry point's snapshot).
    """
    work = Path(tempfile.mkdtemp(prefix="farm-demo-"))
    farm = farm_settings(plan, work)
    proxy_url = f"http://127.0.0.1:{farm.front_port}"
    with ExitStack() as stack:
        farm_proc = stack.enter_context(
            _process(
                [sys.executable, "-m", "farm", "up", *to_argv(farm)],
                "farm",
                work / "farm.log",
                {**environ, **child_env(farm)},
            )
        )
        node = stack.enter_context(LocalNode())
        relay = relay_settings(work, node.rpc_url, proxy_url, plan.streams)
        relay_proc = stack.enter_context(
            _process(
                [sys.executable, "-m", "relay", *to_argv(relay)],
                "relay",
                work / "relay.log",
                {**environ, **child_env(relay)},
            )
        )
        _wait_health(proxy_url, farm_proc, ready_timeout_s, work / "farm.log")
        address = _wait_relay(work / "relay.log", relay_proc, ready_timeout_s)
        if on_sample is not None:
            stream_sample(proxy_url, demo_model(plan), on_sample)
        config = BenchSettings(
            target=("direct", "proxy", "nkn"),
            streams=plan.streams,
            proxy_url=proxy_url,
            relay_address=address,
            nkn_rpc=node.rpc_url,
            duration=plan.duration,
            prompts=ENGINE_PROMPTS if on_engine(plan.mode) else "mixed",
            max_tokens=ENGINE_MAX_TOKENS if on_engine(plan.mode) else 64,
            out=plan.out,
        )
        report = run_bench(config, environ=environ, on_progress=on_progress)
    return report


def shield_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally` blocks tear the farm down."""

    def handler(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
