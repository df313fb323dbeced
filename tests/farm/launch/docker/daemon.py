"""A private Docker daemon for the tests: real `dockerd`, its own socket, roots and bridge.

Each daemon gets a bridge of its own (two daemons on one docker0 would hand out the same
addresses), runs without touching iptables or ip_forward (published ports then go through
Docker's userland proxy, which is all loopback publishing needs), and is stopped by its pid.
What it changed on the host, its bridge, is removed again: the host is left as it was found.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import docker
import docker.errors
import requests

READY_TIMEOUT_S = 30.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Dockerd:
    """One dockerd on `unix://<root>/docker.sock`, bridged on `bridge` with `subnet`.1/24, and
    with `tcp=True` also on `tcp://<subnet>.1:2375`: an address that is not loopback, so the
    launcher treats the engine as another machine's, yet one only this host can reach."""

    def __init__(self, root: Path, bridge: str, subnet: str, tcp: bool = False) -> None:
        self.root = root
        self.bridge = bridge
        self.subnet = subnet  # e.g. "172.29.1": the bridge is .1, containers get the rest
        self.socket = root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.tcp_url = f"tcp://{subnet}.1:2375" if tcp else None
        self.log_path = root / "dockerd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> docker.DockerClient:
        """Create the bridge, start the daemon, return a client once it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        _ip("link", "add", "name", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        argv = [
            "dockerd",
            "--host", self.url,
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "dockerd.pid"),
            "--bridge", self.bridge,
            "--iptables=false",
            "--ip-forward=false",
        ]  # fmt: skip
        if self.tcp_url:
            # Plain TCP is what a remote engine without TLS looks like; --tls=false skips the
            # start-up delay dockerd adds to warn about it.
            argv += ["--host", self.tcp_url, "--tls=false"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self._wait_ready()

    def _wait_ready(self) -> docker.DockerClient:
        # Poll the socket itself: a docker client built before the daemon listens leaks its
        # half-open socket inside the SDK.
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._answers():
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd never answered at {self.url}")
            time.sleep(0.1)
        client = docker.DockerClient(base_url=self.url, timeout=30)
        client.ping()
        return client

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            try:
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.0 200") or False
            except OSError:
                return False

    def stop(self) -> None:
        """Remove every container, stop the daemon by its pid, delete the bridge."""
        try:
            client = docker.DockerClient(base_url=self.url, timeout=30)
        except docker.errors.DockerException:
            client = None
        if client is not None:
            try:
                for c in client.containers.list(all=True):
                    c.remove(force=True)
            except (docker.errors.DockerException, requests.RequestException, OSError):
                pass
            finally:
                client.close()
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        # dockerd mounts its data root on itself; a daemon that died uncleanly leaves that.
        for target in reversed(_mounts_under(self.root)):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mounts") as fh:
        targets = [line.split()[1] for line in fh]
    return [t for t in targets if t == str(root) or t.startswith(f"{root}/")]
