"""A run in which no answer completes says so, with how long the first answer takes and how
long to run, instead of blaming the load generator (through the real `python -m bench`)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.short_run import verdict
from farm.sim.child import SimServer

# Slow decode steps and answers that run to num_predict: nothing completes in a 3 s window.
STEP_MS = 150.0
SLOWDOWN = 0.15
STREAMS = 4
MAX_TOKENS = 128
DURATION_S = 3


def test_a_run_too_short_for_any_answer_says_how_long_to_run(tmp_path: Path) -> None:
    with SimServer(
        num_parallel=STREAMS,
        load_ms=0,
        decode_ms=STEP_MS,
        batch_slowdown=SLOWDOWN,
        response_tokens=1000,
    ) as sim:
        argv = [
            sys.executable, "-m", "bench", "--target", "direct", "--direct-url", sim.url,
            "--model", "gemma3:4b", "--streams", str(STREAMS), "--duration", f"{DURATION_S}s",
            "--max-tokens", str(MAX_TOKENS), "--quiet", "--out", str(tmp_path / "r"),
        ]  # fmt: skip
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost,::1"}
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    found = re.search(
        rf"no answer completed within {DURATION_S} s; the first answer took (\d+) s "
        r"\(projected: \d+ of its 128 tokens in [\d.]+ s\): run at least (\d+) s",
        done.stdout,
    )
    assert found, done.stdout
    took, at_least = int(found[1]), int(found[2])
    # The truth, from the simulator's timing: every stream holds a slot, so each step is
    # STEP_MS * (1 + SLOWDOWN * (STREAMS - 1)), and an answer is 127 steps after its first.
    truth_s = (MAX_TOKENS - 1) * STEP_MS * (1 + SLOWDOWN * (STREAMS - 1)) / 1000
    assert abs(took - truth_s) <= 0.15 * truth_s, (took, truth_s)
    assert at_least >= 3 * took - 3  # the warm-up answer and two measured ones per stream
    assert "--workers" not in done.stdout
    assert found[0] in (tmp_path / "r" / "report.md").read_text()


def _row(status: str, start: int, ttft: float | None, last: float | None, chunks: int) -> dict:
    return {
        "status": status,
        "start_unix_ns": start,
        "ttft_s": ttft,
        "last_token_s": last,
        "n_chunks": chunks,
        "e2e_s": 9.5,
    }


def test_no_verdict_once_an_answer_completed_or_when_requests_failed() -> None:
    done = pd.DataFrame([_row("ok", 1, 0.1, 1.0, 10), _row("incomplete", 2, 0.1, 5.0, 30)])
    failed = pd.DataFrame([_row("http_error", 1, None, None, 0)])
    assert verdict(done, 10.0, 128, 1) == ""
    assert verdict(failed, 10.0, 128, 1) == ""
    assert verdict(done.iloc[1:], None, 128, 1) == ""  # bound by --requests, not by time


def test_a_stream_without_its_first_token_points_at_loading() -> None:
    cell = pd.DataFrame([_row("incomplete", 5, None, None, 0), _row("incomplete", 9, 1.0, 2.0, 3)])
    text = verdict(cell, 10.0, 128, 1)
    assert text.startswith("no answer completed within 10 s; the first answer had no token")
    assert text.endswith(f"run at least {math.ceil(2 * 10.0)} s")
