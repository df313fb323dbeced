"""`python -m bench.calibrate` against a simulator with hidden, non-default timing.

The "real" backend is a simulator whose timing parameters (jitter included) the calibration
is not told; it must find each within 5 %, and `--validate` must find its twin within 10 %
of it on a held-out workload. Fast parameters keep the whole file near a minute and a half.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm.sim.child import SimServer
from farm.sim.profile import Profile, read_profile

HIDDEN = {
    "load_ms": 150.0,
    "prefill_base_ms": 15.0,
    "prefill_ms_per_token": 0.3,
    "prefill_shared": 0.7,
    "prefill_decode_shared": 1.0,
    "decode_ms": 10.0,
    "batch_slowdown": 0.5,
    "batch_exponent": 1.3,
    "jitter": 0.1,
}
DESIGN = [
    "--prompt-words", "8,120,400",
    "--output-tokens", "16,40",
    "--repeats", "3",
    "--prefill-repeats", "90",
    "--loads", "25",
]  # fmt: skip
# The jitter comes from the lone evaluations and the loads: with 30 and 10 its error is
# about 3 % (one standard deviation, by simulation), with 90 and 25 under 2 %.


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.calibrate", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def hidden() -> Iterator[SimServer]:
    with SimServer(num_parallel=4, seed=11, **HIDDEN) as sim:
        yield sim


@pytest.fixture(scope="module")
def calibrated(hidden: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibrate") / "hidden.toml"
    done = _cli("--backend", hidden.url, "--out", str(out), "--note", "test", *DESIGN)
    assert done.returncode == 0, done.stderr
    assert f"profile: {out}" in done.stdout
    return out


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_calibration_recovers_each_hidden_parameter_within_5_percent(
    calibrated: Path, name: str
) -> None:
    fitted = read_profile(calibrated).timing[name]
    assert isinstance(fitted, float)
    assert fitted == pytest.approx(HIDDEN[name], rel=0.05)


def test_the_profile_says_what_was_measured_where(calibrated: Path, hidden: SimServer) -> None:
    profile: Profile = read_profile(calibrated)
    version = httpx.get(hidden.url + "/api/version", trust_env=False).json()["version"]
    assert profile.measured["model"] == "gemma3:4b"
    assert profile.measured["backend_version"] == version
    assert profile.measured["backend"] == hidden.url
    assert "logical cores" in profile.measured["hardware"]
    assert profile.measured["concurrency"] == [1, 2, 4]
    assert profile.measured["note"] == "test"
    # The power law fits a simulator exactly: no curve, and the model's residuals are small
    # (a lone evaluation's median also holds this busy host's wake-up delays: more slack).
    assert "decode_curve" not in profile.timing
    residuals = profile.residuals
    assert {"step_c2", "step_c4", "prefill_w8", "prefill_c4"} <= set(residuals)
    # A backend without stalls: what a busy host adds to a lone evaluation, at most.
    assert profile.timing["prefill_stall"] == pytest.approx(0.0, abs=0.03)
    assert max(abs(r) for k, r in residuals.items() if not k.startswith("prefill_w")) < 0.05
    assert max(abs(r) for k, r in residuals.items() if k.startswith("prefill_w")) < 0.2
    samples = calibrated.with_name(calibrated.name + ".samples.jsonl")
    assert len(samples.read_text(encoding="utf-8").splitlines()) == profile.measured["samples"]


def _validate(hidden: SimServer, profile: Path) -> tuple[list[tuple[str, str]], str]:
    done = _cli(
        "--backend", hidden.url, "--validate", str(profile),
        "--prompt-words", "8,400", "--output-tokens", "16,40",
        "--validate-concurrency", "3", "--validate-requests", "36",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\s+3\s+(tt\w+|tp\w+)\s+[\d.]+\s+[\d.]+\s+([+-][\d.]+)%", done.stdout, re.M)
    assert {metric for metric, _ in rows} == {"ttft_p50", "ttft_p95", "tpot_p50", "tpot_p95"}
    return rows, done.stdout


def test_validate_finds_the_twin_within_10_percent(calibrated: Path, hidden: SimServer) -> None:
    """Held-out: 3 closed-loop users (the fit used bursts of 1, 2 and 4) on a mix of lengths.

    A p95 of 36 answers is their second-slowest, which one stall of this shared host can
    move; so up to three validations run. A twin that is really off fails all three.
    """
    outputs = []
    for _ in range(3):
        rows, stdout = _validate(hidden, calibrated)
        outputs.append(stdout)
        if all(abs(float(error)) <= 10 for _, error in rows):
            break
    assert "within the 10% goal" in outputs[-1] and "NOT" not in outputs[-1], outputs


def test_an_unreachable_backend_is_one_line(tmp_path: Path) -> None:
    done = _cli("--backend", "http://127.0.0.1:9", "--out", str(tmp_path / "x.toml"))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("python -m bench.calibrate: error: /api/version: the backend cannot")
    assert not (tmp_path / "x.toml").exists()


def test_a_missing_model_names_what_the_backend_has(hidden: SimServer, tmp_path: Path) -> None:
    done = _cli("--backend", hidden.url, "--model", "nope:1b", "--out", str(tmp_path / "x.toml"))
    assert done.returncode == 1
    assert "model 'nope:1b' is not on the backend (it has: gemma3:4b)" in done.stderr


def test_a_probe_level_above_the_slots_is_refused() -> None:
    done = _cli("--num-parallel", "2", "--concurrency", "1,4")
    assert done.returncode == 2
    assert "--num-parallel 2: a probe level of 4 would queue" in done.stderr
