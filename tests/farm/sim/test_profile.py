"""Timing profiles: `--profile FILE` sets the timing model beneath flags and variables."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from farm.settings import SettingsError, load
from farm.sim.profile import Profile, read_profile, write_profile
from farm.sim.settings import SimSettings

TIMING = {
    "load_ms": 812.5,
    "prefill_base_ms": 9.0,
    "prefill_ms_per_token": 2.4,
    "prefill_shared": 0.95,
    "decode_ms": 22.9,
    "batch_slowdown": 0.89,
    "batch_exponent": 0.66,
    "decode_curve": "1:22.9,2:43.3,4:64.9",
    "jitter": 0.05,
}


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    path = tmp_path / "llamacpp.toml"
    measured = {"model": "m:1b", "backend_version": "0.12.6", "concurrency": [1, 2, 4]}
    write_profile(path, Profile(TIMING, measured, {"step_c2": -0.14}), header="a profile")
    return path


def test_a_written_profile_reads_back_whole(profile_path: Path) -> None:
    profile = read_profile(profile_path)
    assert dict(profile.timing) == TIMING
    assert profile.measured["concurrency"] == [1, 2, 4]
    assert profile.residuals == {"step_c2": -0.14}
    assert profile_path.read_text(encoding="utf-8").startswith("# a profile\nschema = 1\n")


def test_the_profile_sets_every_timing_setting(profile_path: Path) -> None:
    settings = load(SimSettings, ["--profile", str(profile_path)], {}).settings
    assert {key: getattr(settings, key) for key in TIMING} == TIMING


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, 22.9),
        (["--decode-ms", "5"], {}, 5.0),
        ([], {"FARM_SIM_DECODE_MS": "7"}, 7.0),
        (["--decode-ms", "5"], {"FARM_SIM_DECODE_MS": "7"}, 5.0),
    ],
    ids=["profile-beats-default", "flag-beats-profile", "env-beats-profile", "flag-beats-env"],
)
def test_flags_and_variables_beat_the_profile(
    profile_path: Path, argv: list[str], environ: dict[str, str], expected: float
) -> None:
    settings = load(SimSettings, ["--profile", str(profile_path), *argv], environ).settings
    assert settings.decode_ms == expected
    assert settings.load_ms == TIMING["load_ms"]


def test_the_profile_can_come_from_the_environment(profile_path: Path) -> None:
    settings = load(SimSettings, [], {"FARM_SIM_PROFILE": str(profile_path)}).settings
    assert settings.prefill_shared == TIMING["prefill_shared"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema = 1\n[timing]\nnum_parallel = 4\n", "num_parallel is not a timing setting"),
        ("schema = 1\n[timing]\ndecode_ms = 'fast'\n", "decode_ms must be a number"),
        ("schema = 1\n[timing]\ndecode_curve = '1:x'\n", "decode_curve: '1:x' is not SLOTS:MS"),
        ("schema = 2\n[timing]\ndecode_ms = 3\n", "schema 2 is not 1"),
        ("schema = 1\n", "needs a [timing] table"),
        ("decode_ms = [", "not a TOML file"),
    ],
    ids=["unknown-key", "mistyped", "bad-curve", "future-schema", "no-timing", "not-toml"],
)
def test_a_bad_profile_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load(SimSettings, ["--profile", str(path)], {})
    assert str(caught.value).startswith(f"--profile {path}: ")
    assert message in str(caught.value)


def test_the_cli_refuses_a_missing_profile_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    done = subprocess.run(
        [sys.executable, "-m", "farm.sim", "--profile", str(missing), "--print-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"python -m farm.sim: error: --profile {missing}: cannot read it "
        "(No such file or directory)"
    ]


def test_print_config_shows_the_profile_values(profile_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "farm.sim", "--profile", str(profile_path), "--print-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = {line.split(" = ")[0].strip(): line for line in done.stdout.splitlines()}
    assert "= 0.95" in lines["prefill_shared"]
    assert "1:22.9,2:43.3,4:64.9" in lines["decode_curve"]


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.toml"
    write_profile(path, Profile({"decode_ms": math.nan}))
    with pytest.raises(SettingsError, match="decode_ms must be a number"):
        load(SimSettings, ["--profile", str(path)], {})


def test_any_text_in_the_provenance_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    measured = {"hardware": 'GPU "A" 😀 ü\ttab\x01', "note": "line\nbreak \\ end"}
    write_profile(path, Profile({"decode_ms": 20.0}, measured))
    assert dict(read_profile(path).measured) == measured
