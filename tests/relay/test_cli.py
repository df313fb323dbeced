"""`python -m relay` and `python -m relay.client` as users run them, over the local NKN node."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm.sim.child import SimServer
from relay.localnode.child import LocalNode

MODEL = "gemma3:4b"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalNode]:
    with LocalNode() as local:
        yield local


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(load_ms=0, decode_ms=1, seed=11) as server:
        yield server


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NKN_", "RELAY_"))}
    return {**env, "NO_PROXY": "127.0.0.1,localhost", **extra}


def _wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30.0) -> str:
    """Read stdout until a line starts with `prefix` (in a thread, so a deadline holds)."""
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(prefix):
                found.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise AssertionError(f"no line starting with {prefix!r} within {timeout}s")
    return found[0]


def test_relay_cli_prints_address_and_client_cli_streams_the_answer(
    node: LocalNode, sim: SimServer, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    relay = subprocess.Popen(
        [sys.executable, "-m", "relay", "--env-file", str(env_file)],
        env=_env(NKN_RPC_SERVER_ADDR=node.rpc_url, RELAY_TARGETS=json.dumps({"ollama": sim.url})),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        address = _wait_line(relay, "NKN ready: ").removeprefix("NKN ready: ")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert address.rsplit(".", 1)[-1] in _public_keys(address)
        prompt = "Say hello"
        client = subprocess.run(
            [sys.executable, "-m", "relay.client", "--to", address, "--model", MODEL,
             "--prompt", prompt, "--nkn-rpc", node.rpc_url, "--timeout", "30"],
            env=_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert client.returncode == 0, client.stderr
        direct = httpx.post(
            f"{sim.url}/api/generate",
            json={"model": MODEL, "prompt": prompt, "stream": False},
            timeout=30,
        ).json()["response"]
        assert client.stdout.strip() == direct.strip() and direct.strip()
        assert "lines in" in client.stderr
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            code = relay.wait(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
            raise
        assert code == 0  # SIGTERM shuts down cleanly, closing the bridge
        if relay.stdout is not None:
            relay.stdout.close()


def _public_keys(address: str) -> str:
    # The address is identifier.pubkey or pubkey: 64 lowercase hex at the end.
    key = address.rsplit(".", 1)[-1]
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)
    return key


def test_relay_cli_names_the_bad_key_in_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "relay", "--env-file", str(tmp_path / ".env")],
        env=_env(RELAY_TARGETS="{oops"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m relay: error: RELAY_TARGETS '{oops': "
        'not valid JSON (expected {"name": "http://host:port"})'
    ]
    assert time.monotonic() - started < 30
