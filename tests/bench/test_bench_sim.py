"""Short real runs of the whole harness (locust subprocesses) against the Ollama simulator.

Truthfulness: with the simulator at fixed timing (load 0, fixed prefill and decode, no jitter,
a slot per stream), what the report says must match what the simulator did.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bench.report import Report
from bench.run import run_bench
from bench.settings import BenchSettings
from farm.proxy.child import ProxyServer
from farm.settings import to_argv
from farm.settings.load import validate
from farm.sim.child import SimServer
from relay.localnode.child import LocalNode
from relay.settings import RelaySettings

DECODE_MS = 20.0
PREFILL_MS_PER_TOKEN = 0.5
FIXED = {
    "load_ms": 0,
    "prefill_ms_per_token": PREFILL_MS_PER_TOKEN,
    "decode_ms": DECODE_MS,
    "batch_slowdown": 0,
    "jitter": 0,
}


def bench(url: str, out: Path, **changes: object) -> Report:
    base = {
        "target": ("direct",),
        "direct_url": url,
        "model": "gemma3:4b",
        "prompts": "short",
        "max_tokens": 24,
        "quiet": True,
        "out": out,
    }
    return run_bench(validate(BenchSettings, {**base, **changes}), environ=dict(os.environ))


# Client TTFT minus the simulator's own TTFT. At one stream it is the harness plus loopback
# (about 0.4 ms here). At 9 streams on a 2-core box shared by the simulator and locust it was
# 1.5-2.7 ms: the first token's delivery lag stays at ~0.5 ms, the rest is spent before the
# simulator's handler starts its clock (uvicorn, the event loop busy with other streams), which
# no server-side duration can show. So the strict bound is held at 1 stream and 9 streams get
# the bound the issue uses for a load generator's limit.
TTFT_ERROR_MS = {1: 2.0, 9: 5.0}


def test_one_and_nine_streams_report_the_simulators_ttft_and_token_rate(tmp_path: Path) -> None:
    with SimServer(num_parallel=9, **FIXED) as sim:
        report = bench(sim.url, tmp_path / "r", sweep=(1, 9), duration=6.0)
    md = (tmp_path / "r" / "report.md").read_text()
    for (_, row), check in zip(report.summary.iterrows(), report.checks, strict=True):
        streams = int(row["streams"])
        assert row["errors"] == 0 and row["ok"] >= (8 if streams == 1 else 30)
        assert row["achieved_streams"] == pytest.approx(streams, abs=0.3)
        assert row["token_mismatch"] == 0
        # Truth is what the simulator did, from the durations it reported per request: its
        # TTFT is load + slot wait + prefill + first decode step; its rate is
        # eval_count / eval_duration.
        ttft_error_ms = abs(row["ttft_ms_p50"] - row["srv_ttft_ms_p50"])
        rate_error = abs(row["stream_tok_s_p50"] / row["srv_decode_tok_s_p50"] - 1)
        assert rate_error <= 0.02
        if not check.client_bound:
            assert ttft_error_ms <= TTFT_ERROR_MS[streams], streams
        else:
            # A starved load generator (e.g. a busy shared CI box) must say so, in bold.
            assert f"**direct×{streams}: " in md and check.reasons[0] in md
            assert ttft_error_ms <= 25.0
    rows = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    assert set(rows["status"]) <= {"ok", "incomplete"}
    assert "**backend: the Ollama simulator (synthetic numbers, no model ran)**" in md


def test_busy_backend_and_failing_streams_become_error_rows(tmp_path: Path) -> None:
    # keep-alive 0 unloads the model after each request, so requests queue behind a reload in the
    # scheduler, where a queue of one turns the rest away with 503 (Ollama's only 503 path).
    # Every admitted stream then fails after 3 tokens with an in-band error line.
    flags = {**FIXED, "load_ms": 150, "keep_alive": "0", "max_queue": 1, "fail_after_tokens": 3}
    with SimServer(num_parallel=1, **flags) as sim:
        report = bench(sim.url, tmp_path / "r", streams=4, requests=16, warmup=0)
    errors = report.errors.set_index("status")
    assert errors.loc["http_error", "count"] > 0
    assert "503" in errors.loc["http_error", "first_error"]
    assert errors.loc["stream_error", "count"] > 0
    rows = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    failed = rows[rows["status"] == "stream_error"]
    assert (failed["n_chunks"] == 3).all()  # tokens received before the failure are kept
    assert (tmp_path / "r" / "report.html").exists()
    assert report.summary.iloc[0]["ok"] == 0


def test_two_workers_each_contribute_rows(tmp_path: Path) -> None:
    with SimServer(num_parallel=4, **FIXED) as sim:
        report = bench(sim.url, tmp_path / "r", streams=4, requests=16, workers=2, warmup=0)
    rows = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    done = rows[rows["status"] == "ok"]
    assert set(done["worker_id"]) == {"w0", "w1"}
    assert len(done) >= 16
    assert report.summary.iloc[0]["errors"] == 0


def test_all_targets_run_the_same_prompts_side_by_side(tmp_path: Path) -> None:
    with SimServer(num_parallel=4, **FIXED) as sim, ProxyServer([sim.url]) as proxy:
        report = bench(
            sim.url,
            tmp_path / "r",
            target=("direct", "proxy", "nkn"),
            proxy_url=proxy.url,
            nkn_loopback=True,
            streams=2,
            requests=6,
            warmup=0,
            model=None,
        )
    summary = report.summary.set_index("target")
    assert list(summary.index) == ["direct", "nkn", "proxy"]
    assert (summary["ok"] >= 6).all() and (summary["errors"] == 0).all()
    rows = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    prompts = rows.groupby("target")["prompt_id"].apply(lambda s: set(s))
    assert prompts["direct"] & prompts["proxy"] & prompts["nkn"]
    nkn = rows[rows["target"] == "nkn"]
    assert (nkn["nkn_frames"] > 0).all() and (nkn["nkn_dm_bytes"] > 0).all()
    # The relay batches lines for up to 80 ms: NKN's TTFT carries that, the others don't.
    assert summary.loc["nkn", "ttft_ms_p50"] > summary.loc["direct", "ttft_ms_p50"]


def test_a_dying_backend_shows_cut_streams_and_refused_requests(tmp_path: Path) -> None:
    # Streams stall after 3 tokens; once they hang there the backend is SIGKILLed under them.
    with SimServer(num_parallel=4, stall_after_tokens=3, **FIXED) as sim:
        result: list[Report] = []
        runner = threading.Thread(
            target=lambda: result.append(
                bench(sim.url, tmp_path / "r", streams=3, duration=4.0, warmup=0)
            )
        )
        runner.start()
        sim.wait_for(lambda s: s["models"]["gemma3:4b"]["active"] == 3, timeout=30)
        # A probe on the fourth slot, sent after the bench's three: once it has its 3 tokens
        # and stalls, so have they.
        probe = {"model": "gemma3:4b", "prompt": "[probe] hi", "options": {"num_predict": 8}}
        with httpx.stream("POST", sim.url + "/api/generate", json=probe, timeout=30) as resp:
            lines = resp.iter_lines()
            for _ in range(3):
                next(lines)
            sim.kill()
        runner.join(timeout=60)
    assert result, "the run did not finish"
    rows = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    cut = rows[rows["status"] == "cut"]
    assert len(cut) == 3
    assert (cut["n_chunks"] == 3).all() and cut["error"].str.len().gt(0).all()
    refused = rows[rows["status"] == "connect_error"]
    assert 0 < len(refused) < 200  # retried with a pause, not in a hot loop
    assert result[0].summary.iloc[0]["cut"] == 3


def test_sweep_follows_the_simulators_batching_model(tmp_path: Path) -> None:
    # decode step = decode_ms * (1 + slowdown * (active - 1)): per-stream rate falls with
    # streams while the aggregate rises.
    timing = {**FIXED, "decode_ms": 10.0, "batch_slowdown": 0.25}
    with SimServer(num_parallel=9, **timing) as sim:
        report = bench(sim.url, tmp_path / "r", sweep=(1, 2, 4, 9), duration=3.0)
    summary = report.summary.sort_values("streams")
    per_stream = list(summary["stream_tok_s_p50"])
    aggregate = list(summary["agg_tok_s"])
    assert per_stream == sorted(per_stream, reverse=True)
    assert aggregate == sorted(aggregate)
    for n, rate in zip(summary["streams"], per_stream, strict=True):
        assert rate == pytest.approx(1000 / (10.0 * (1 + 0.25 * (n - 1))), rel=0.1)
    assert (tmp_path / "r" / "plots" / "sweep.png").exists()


def test_nkn_target_streams_through_a_relay_on_the_local_nkn_node(tmp_path: Path) -> None:
    with (
        SimServer(num_parallel=2, **FIXED) as sim,
        ProxyServer([sim.url]) as proxy,
        LocalNode() as node,
    ):
        settings = RelaySettings(
            env_file=tmp_path / "relay.env", nkn_rpc=(node.rpc_url,), targets={"ollama": proxy.url}
        )
        env = {**os.environ}
        log_path = tmp_path / "relay.log"
        with log_path.open("wb") as log:
            relay = subprocess.Popen(
                [sys.executable, "-m", "relay", *to_argv(settings)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                address = _relay_address(log_path, relay)
                report = bench(
                    sim.url,
                    tmp_path / "r",
                    target=("nkn",),
                    proxy_url=proxy.url,
                    relay_address=address,
                    nkn_rpc=node.rpc_url,
                    streams=2,
                    requests=4,
                    warmup=0,
                )
            finally:
                relay.terminate()
                relay.wait(timeout=20)
    row = report.summary.iloc[0]
    assert (row["target"], row["errors"]) == ("nkn", 0) and row["ok"] >= 4
    nkn = report.nkn.iloc[0]
    assert nkn["dms_per_request"] > 1 and nkn["dm_bytes_per_token"] > 0
    assert nkn["seq_gaps"] == 0


def _relay_address(log_path: Path, relay: subprocess.Popen[bytes]) -> str:
    """Poll the relay's log for `NKN ready: <address>` (deadline 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"NKN ready: (\S+)", log_path.read_text(errors="replace"))
        if match:
            return match.group(1)
        assert relay.poll() is None, log_path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"relay never joined the local node: {log_path.read_text()}")
