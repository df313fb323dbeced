"""Bad input to `python -m farm up`: one clear line, a non-zero exit, nothing half-started."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from farm.launch.__main__ import main

from .conftest import Farm, free_ports, port_is_free

ERROR = "python -m farm up: error: "


def _assert_refused(
    farm: Farm, done: subprocess.CompletedProcess[str], expected: str, *, pattern: bool = False
) -> None:
    """One error line holding `expected` (a regular expression if `pattern`), nothing started."""
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith(ERROR)]
    assert len(lines) == 1, done.stderr
    found = re.search(expected, lines[0]) if pattern else expected in lines[0]
    assert found, done.stderr
    assert done.stderr.count("Traceback") == 0
    assert not farm.state_file.exists()
    assert farm.ollama_calls() == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mode", "gpu"], r"argument --mode: invalid choice: 'gpu'"),
        (["--num-parallel", "-2"], r"--num-parallel '?-2'?: needs at least 1 slot$"),
        (["--num-parallel", "four"], r"--num-parallel '?four'?: .*valid integer"),
        (["--model", "gemma3:"], r"--model 'gemma3:': bad tag ''"),
        (["--model", "gemma3:4b:q8"], r"bad tag '4b:q8'"),
        (["--model", "gemma3:4b!"], r"bad tag '4b!'"),
        (["--keepalive", "forever"], r"--keepalive 'forever': use a duration like 5m"),
        (["--replicas", "0"], r"--replicas '?0'?: needs at least 1$"),
        (["--backend-url", "ftp://x"], r"--backend-url 'ftp://x': expected http\(s\)://host:port"),
        (["--mode", "docker", "--backend-url", "http://h:1"], r"cannot be combined"),
        (["--front-port", "0"], r"--front-port '?0'?: a port is 1-65535$"),
        (["--front-port", "11434"], r"--front-port 11434: clashes with a back port$"),
        (["--gpu-layers", "-2"], r"--gpu-layers '?-2'?: use -1 \(all that fit\) or >= 0$"),
        (["--ctx", "0"], r"--ctx '?0'?: a context length is at least 1 token$"),
        (["--name", "_x"], r"--name '_x': use letters, digits"),
        (["--bogus"], r"unrecognized arguments: --bogus"),
    ],
    ids=[
        "unknown-mode",
        "negative-parallel",
        "non-integer-parallel",
        "empty-tag",
        "two-tags",
        "bad-tag-char",
        "bad-keepalive",
        "zero-replicas",
        "bad-backend-url",
        "mode-and-backend-url",
        "port-zero",
        "front-on-back-port",
        "gpu-layers-below-minus-one",
        "zero-ctx",
        "bad-name",
        "unknown-flag",
    ],
)
def test_bad_flag_is_one_line_and_exit_2(
    farm: Farm,
    args: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process (flag validation happens before any I/O), through the same entry point."""
    monkeypatch.chdir(farm.cwd)
    rc = main(["up", "--model", "gemma3:4b", *args], environ=farm.env)
    err = capsys.readouterr().err
    assert rc == 2
    _assert_refused(farm, subprocess.CompletedProcess([], rc, "", err), expected, pattern=True)


def test_bad_environment_value_names_the_variable(
    farm: Farm, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["up", "--model", "gemma3:4b"], environ={**farm.env, "FARM_READY_TIMEOUT": "0"})
    err = capsys.readouterr().err
    assert rc == 2
    expected = f"{ERROR}FARM_READY_TIMEOUT '?0'?: must be a positive number of seconds\n"
    assert re.fullmatch(expected, err), err


def test_front_port_in_use_names_the_holder(farm: Farm) -> None:
    farm.install_ollama()
    front, back = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", front))
        holder.listen()
        done = farm.run(
            "up", "--model", "gemma3:4b", "--mode", "local", "--host", "127.0.0.1",
            "--front-port", str(front), "--back-port", str(back),
        )  # fmt: skip
    _assert_refused(farm, done, f"--front-port {front}: port already in use by ")
    assert f"(pid {os.getpid()})" in done.stderr
    assert port_is_free(back)


def test_back_port_in_use_refuses_before_starting_ollama(farm: Farm) -> None:
    farm.install_ollama()
    front, back = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", back))
        holder.listen()
        done = farm.run(
            "up", "--model", "gemma3:4b", "--mode", "local",
            "--front-port", str(front), "--back-port", str(back),
        )  # fmt: skip
    _assert_refused(farm, done, f"--back-port {back}: port already in use")


def test_models_dir_that_is_a_file_is_refused(farm: Farm) -> None:
    farm.install_ollama()
    bogus = farm.cwd / "models.txt"
    bogus.write_text("not a dir")
    done = farm.run("up", "--model", "gemma3:4b", "--mode", "local", "--models-dir", str(bogus))
    _assert_refused(farm, done, "exists but is not a directory")


def test_unreadable_models_dir_is_refused(farm: Farm) -> None:
    """Root reads any directory, so the launcher runs without CAP_DAC_OVERRIDE here."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the DAC override capabilities")
    locked = farm.cwd / "locked"
    locked.mkdir(mode=0o000)
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable,
         "-m", "farm", "up", "--model", "gemma3:4b", "--mode", "sim", "--models-dir", str(locked)],
        cwd=farm.cwd, env=farm.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    _assert_refused(farm, done, f"models dir {locked}: not readable and writable by this user")
    assert done.returncode == 1


def test_auto_with_no_engine_and_no_ollama_names_three_ways(farm: Farm) -> None:
    done = farm.run("up", "--model", "gemma3:4b")
    _assert_refused(farm, done, "invoke gpu-setup")
    assert "install Ollama" in done.stderr and "--mode sim" in done.stderr


def test_local_mode_without_ollama_binary_is_refused(farm: Farm) -> None:
    done = farm.run("up", "--model", "gemma3:4b", "--mode", "local")
    _assert_refused(farm, done, "no `ollama` binary on PATH")
