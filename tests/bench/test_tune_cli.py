"""`python -m bench.tune` as a user runs it: the answer, `--apply`, and one clear line for each
way a tune cannot go on (an external URL, a missing model, SLOs no single user meets, a backend
that dies, Ctrl-C), with what was measured kept in the report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from farm.common.childserver import poll_until
from farm.launch import state
from farm.launch.settings import UpSettings
from farm.settings import load

SIM_ENV = {
    "FARM_SIM_LOAD_MS": "50",
    "FARM_SIM_DECODE_MS": "10",
    "FARM_SIM_BATCH_SLOWDOWN": "1.0",
    "FARM_SIM_RESPONSE_TOKENS": "12",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}
FAST = [
    "--mode", "sim", "--model", "gemma3:4b", "--prompts", "short", "--slo-ttft-p95", "100ms",
    "--slo-tpot-p95", "45ms", "--max-users", "4", "--level-time", "15s", "--budget", "2m",
    "--quiet",
]  # fmt: skip


def tune_argv(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.tune", *FAST, "--out", str(out), *extra]


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SIM_ENV}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def first_rows(out: Path) -> bool:
    return any(p.stat().st_size for p in out.glob("levels/*/rows-*.jsonl"))


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    return lines[-1]


def test_a_tune_answers_and_apply_writes_the_launchers_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# the farm\nFARM_NUM_PARALLEL=4\nOLLAMA_KEEP_ALIVE=1h\n")
    done = run(
        tune_argv(tmp_path / "t", "--num-parallel", "1", "--apply", "--env-file", str(env_file))
    )
    assert done.returncode == 0, done.stderr
    assert "NUM_PARALLEL=1 serves 1 user (95% CI 1-1) within TTFT p95 <= 100 ms" in done.stdout
    assert "-FARM_NUM_PARALLEL=4\n+FARM_NUM_PARALLEL=1\n" in done.stdout
    assert env_file.read_text() == "# the farm\nFARM_NUM_PARALLEL=1\nOLLAMA_KEEP_ALIVE=1h\n"
    # The launcher reads what was written.
    up = load(UpSettings, ["--model", "gemma3:4b", "--env-file", str(env_file)], {}).settings
    assert up.num_parallel == 1
    assert (tmp_path / "t" / "report.html").is_file()
    assert not list((tmp_path / "t" / "farm").glob("*/state.json"))  # every farm stopped


def test_an_external_backend_cannot_be_retuned(tmp_path: Path) -> None:
    done = run(tune_argv(tmp_path / "t", "--backend-url", "http://127.0.0.1:11434"))
    assert done.returncode == 2
    assert "an external Ollama cannot be retuned" in one_line(done.stderr)


def test_a_missing_model_is_one_line(tmp_path: Path) -> None:
    argv = tune_argv(tmp_path / "t", "--num-parallel", "2")
    argv[argv.index("gemma3:4b")] = "nosuch:1b"
    done = run(argv)
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        "error: model nosuch:1b is not on the sim backend: check the name (`ollama list`) "
        "or pull it first"
    )


def test_slos_no_single_user_meets_stop_the_tune_in_one_line(tmp_path: Path) -> None:
    argv = tune_argv(tmp_path / "t", "--num-parallel", "1,2")
    argv[argv.index("45ms")] = "2ms"  # one user's decode step alone is 10 ms
    done = run(argv)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith(
        "error: the SLOs cannot be met even by one user: at NUM_PARALLEL=1 one user got TTFT p95"
    ), line
    assert line.endswith("loosen --slo-ttft-p95/--slo-tpot-p95")
    report = (tmp_path / "t" / "report.md").read_text()
    assert "| 1 | 1 | False | True |" in report  # the one level measured, kept
    assert not (tmp_path / "t" / "levels" / "np2-u2").exists()


def _start(out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, **SIM_ENV}
    argv = tune_argv(out, *extra)
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_a_backend_dying_mid_tune_is_one_line_and_the_levels_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "t"
    proc = _start(out, "--num-parallel", "2")
    poll_until(lambda: first_rows(out), 60, "a level measured its first rows")
    record = state.load(out / "farm" / "np2")
    assert record is not None
    psutil.Process(record.backends[0].pid).kill()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert one_line(stderr).startswith(
        "error: the backend died mid-tune (NUM_PARALLEL=2, 2 users); what was measured is kept"
    )
    assert "stopped" in (out / "report.md").read_text()
    assert (out / "levels" / "np2-u2" / "rows-w0.jsonl").stat().st_size > 0


def test_ctrl_c_keeps_what_was_measured_and_says_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "t"
    proc = _start(out, "--num-parallel", "2,4")
    poll_until(lambda: first_rows(out), 60, "a level measured its first rows")
    record = state.load(out / "farm" / "np2")
    assert record is not None
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    line = one_line(stderr)
    assert line.startswith("interrupted at NUM_PARALLEL=2, 2 users; what was measured is in")
    assert "stopped: interrupted at NUM_PARALLEL=2, 2 users" in (out / "report.md").read_text()
    # The candidate's farm was stopped, its simulator with it.
    assert state.load(out / "farm" / "np2") is None
    poll_until(lambda: not psutil.pid_exists(record.backends[0].pid), 15, "the backend gone")
