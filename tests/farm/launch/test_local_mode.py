"""Local mode: a real `ollama serve` process (here a test-only `ollama` that runs the simulator)
started, awaited, warmed, fronted by the proxy and stopped again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil

from .conftest import Farm, free_ports, port_is_free


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def test_local_detach_runs_ollama_serve_with_the_farm_environment(farm: Farm) -> None:
    farm.install_ollama()
    front, back = free_ports(2)
    models = farm.cwd / "store"
    done = farm.run(
        "up", "--mode", "local", "--model", "llama3.2:1b", "--num-parallel", "3",
        "--keepalive", "30m", "--ctx", "2048", "--max-queue", "7", "--flash-attention",
        "--models-dir", str(models), "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back), "--detach",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"models dir: {models} (given by --models-dir)" in done.stderr
    assert "pull llama3.2:1b: success" in done.stderr and "load_duration" in done.stderr
    assert "inference compute id=cpu library=cpu" in done.stderr
    assert "Ollama found no GPU and runs on the CPU" in done.stderr
    # The pull landed in the chosen models dir, in Ollama's store layout.
    assert (models / "models/manifests/registry.ollama.ai/library/llama3.2/1b").is_file()
    serve = [c for c in farm.ollama_calls() if c["argv"] == ["serve"]]
    assert len(serve) == 1
    assert serve[0]["env"] == {
        "OLLAMA_HOST": f"127.0.0.1:{back}",
        "OLLAMA_NUM_PARALLEL": "3",
        "OLLAMA_KEEP_ALIVE": "30m",
        "OLLAMA_CONTEXT_LENGTH": "2048",
        "OLLAMA_MAX_QUEUE": "7",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_MODELS": str(models / "models"),
    }
    state = farm.state()
    backend_pid = state["backends"][0]["pid"]
    assert state["mode"] == "local" and state["detach"] is True

    status = farm.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "slots: 3 per backend" in status.stdout
    assert f"backend 1: process http://127.0.0.1:{back}" in status.stdout
    assert "loaded: llama3.2:1b" in status.stdout

    down = farm.run("down")
    assert down.returncode == 0
    assert f"stopped process backend http://127.0.0.1:{back} (pid {backend_pid})" in down.stdout
    assert _gone(backend_pid) and _gone(state["proxy_pid"])
    assert not farm.state_file.exists()
    assert port_is_free(front) and port_is_free(back)


def test_auto_picks_local_ollama_and_sigterm_shuts_everything_down(farm: Farm) -> None:
    """No Docker engine answers (DOCKER_HOST is a dead socket), so auto runs `ollama serve`."""
    farm.install_ollama()
    front, back = free_ports(2)
    proc = farm.popen(
        "up", "--model", "gemma3:4b", "--no-pull", "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back),
    )  # fmt: skip
    try:
        assert _wait(farm.state_file.exists, 30)
        state = json.loads(farm.state_file.read_text())
        assert state["detach"] is False and state["launcher_pid"] == proc.pid
        assert state["mode"] == "local"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        _reap(proc)
    assert "mode auto: no Docker engine; using the local ollama binary" in err
    assert "shutting down" in err
    assert _gone(state["backends"][0]["pid"]) and _gone(state["proxy_pid"])
    assert not farm.state_file.exists()


def test_down_stops_a_foreground_farm_from_another_shell(farm: Farm) -> None:
    farm.install_ollama()
    front, back = free_ports(2)
    proc = farm.popen(
        "up", "--mode", "local", "--model", "gemma3:4b", "--no-pull", "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back),
    )  # fmt: skip
    try:
        assert _wait(farm.state_file.exists, 30)
        state = farm.state()
        assert farm.run("down").returncode == 0
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        _reap(proc)
    assert _gone(state["backends"][0]["pid"]) and _gone(state["proxy_pid"])


def test_a_backend_that_dies_at_start_is_reported_and_nothing_is_left(farm: Farm) -> None:
    """`ollama serve` exits at once (port clash inside it): the log tail reaches the user."""
    (farm.bin / "ollama").write_text(
        "#!/bin/sh\necho 'Error: listen tcp: bind: refused' >&2\nexit 1\n"
    )
    (farm.bin / "ollama").chmod(0o755)
    front, back = free_ports(2)
    done = farm.run(
        "up", "--mode", "local", "--model", "gemma3:4b", "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back),
    )  # fmt: skip
    assert done.returncode == 1
    assert "exited before it was ready" in done.stderr
    assert "Error: listen tcp: bind: refused" in done.stderr
    assert not farm.state_file.exists()
    assert port_is_free(front)


def test_a_backend_dying_under_a_foreground_farm_stops_the_rest(farm: Farm) -> None:
    farm.install_ollama()
    front, back = free_ports(2)
    proc = farm.popen(
        "up", "--mode", "local", "--model", "gemma3:4b", "--no-pull", "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back),
    )  # fmt: skip
    try:
        assert _wait(farm.state_file.exists, 30)
        state = farm.state()
        os.kill(state["backends"][0]["pid"], signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        _reap(proc)
    assert proc.returncode == 1
    expected = f"backend http://127.0.0.1:{back} exited; stopping the farm"
    assert f"python -m farm up: error: {expected}" in err
    assert _gone(state["proxy_pid"]) and not farm.state_file.exists()
