"""Fixtures for GPU setup: a sandbox root, recording command stubs on PATH, a fake NVIDIA repo,
and a fake NVML at pynvml's boundary (`nvml_site/fake_nvml.py`)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from farm.gpu.__main__ import main

from .nvml_site import fake_nvml

STUB_SOURCE = Path(__file__).with_name("host_stub.py")
NVML_SITE = Path(__file__).with_name("nvml_site")
GIB = 1024**3
H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-0b6a5f8e-1c2d-4e3f-9a8b-7c6d5e4f3a21",
    "total": 81559 * 1024**2,
    "free": 81000 * 1024**2,
    "mig": 0,
    "processes": [],
}
ONE_H100 = {"driver": "550.54.15", "cuda": 12040, "gpus": [H100]}
COMMANDS = ("nvidia-smi", "docker", "systemctl", "apt-get")
# Bytes that start with an OpenPGP public-key packet tag (0x99), as a dearmored key does.
KEY_BYTES = bytes([0x99, 0x01, 0x0D]) + bytes(range(200))
UPSTREAM_LIST = (
    "deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
    "#deb https://nvidia.github.io/libnvidia-container/experimental/deb/$(ARCH) /\n"
)


def armored(data: bytes) -> bytes:
    """ASCII-armor `data` the way NVIDIA serves its gpgkey (header, blank line, body, CRC)."""
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    text = "\n".join(
        ["-----BEGIN PGP PUBLIC KEY BLOCK-----", "Comment: test key", "", *lines, "=AbCd"]
        + ["-----END PGP PUBLIC KEY BLOCK-----", ""]
    )
    return text.encode()


class _RepoHandler(BaseHTTPRequestHandler):
    routes = {
        "/gpgkey": armored(KEY_BYTES),
        "/stable/deb/nvidia-container-toolkit.list": UPSTREAM_LIST.encode(),
    }

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on results, not on access logs."""


@pytest.fixture(scope="session")
def nvidia_repo() -> Iterator[str]:
    """A loopback stand-in for https://nvidia.github.io/libnvidia-container."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RepoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Host:
    """A sandboxed host: its root, stub bin dir, flag dir and the recorded calls."""

    root: Path
    bin: Path
    state: Path
    log: Path
    env: dict[str, str]

    def nvml(self, spec: dict[str, object]) -> None:
        """Describe the host's GPUs as NVML will report them (see fake_nvml.py)."""
        Path(self.env[fake_nvml.ENV]).write_text(json.dumps(spec))

    def flag(self, name: str) -> None:
        """Set a stub behaviour flag (see host_stub.py)."""
        (self.state / name).touch()

    def calls(self) -> list[list[str]]:
        """Every recorded command line, in order, as [cmd, *args]."""
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [[row["cmd"], *row["argv"]] for row in rows]

    def clear_calls(self) -> None:
        """Forget the calls so far (to look at one run only)."""
        self.log.unlink(missing_ok=True)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the `python -m farm.gpu` entry point on `args` against this sandbox, in-process
        (its commands are still real processes: the stubs on PATH)."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
            for key, value in self.env.items():
                mp.setenv(key, value)
            for name, fake in fake_nvml.functions().items():
                mp.setattr(fake_nvml.pynvml, name, fake)
            rc = main(list(args))
        return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def write_os_release(root: Path, id_: str, version: str, pretty: str) -> None:
    """Write `<root>/etc/os-release`."""
    path = root / "etc" / "os-release"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'PRETTY_NAME="{pretty}"\nID={id_}\nVERSION_ID="{version}"\n')


@pytest.fixture
def host(tmp_path: Path, nvidia_repo: str) -> Host:
    """Ubuntu 24.04, one H100 through the fake NVML, a running Docker, no toolkit yet."""
    root, bindir, state = tmp_path / "root", tmp_path / "bin", tmp_path / "state"
    for d in (root, bindir, state):
        d.mkdir()
    write_os_release(root, "ubuntu", "24.04", "Ubuntu 24.04.1 LTS")
    source = STUB_SOURCE.read_text()
    for name in COMMANDS:
        path = bindir / name
        # -S: no site-packages scan; the stub needs only the stdlib and starts twice as fast.
        path.write_text(f"#!{sys.executable} -S\n{source}")
        path.chmod(0o755)
    daemon = root / "etc" / "docker" / "daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text(
        json.dumps({"log-driver": "json-file", "features": {"containerd-snapshotter": True}})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_", "STUB_"))}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        FARM_GPU_ROOT=str(root),
        FARM_NVIDIA_REPO=nvidia_repo,
        STUB_STATE=str(state),
        STUB_ROOT=str(root),
        STUB_LOG=str(tmp_path / "calls.jsonl"),
        NO_PROXY="127.0.0.1,localhost",
    )
    env[fake_nvml.ENV] = str(tmp_path / "nvml.json")
    made = Host(root, bindir, state, tmp_path / "calls.jsonl", env)
    made.nvml(ONE_H100)
    return made
