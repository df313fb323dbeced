"""`ProxyServer`: the proxy in a subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from farm.common.childserver import ChildServer, poll_until
from farm.common.net import free_port

__all__ = ["ProxyServer", "free_port"]

READY_TIMEOUT_S = 20.0
# Loopback only: never route the helper's own requests through an HTTP(S)_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProxyServer(ChildServer):
    """Run `python -m farm.proxy` against `backends` until `stop()` (or the `with` block ends).

    Keyword flags map onto CLI flags: `api_key="k"` → `--api-key k`, `cors_origins=[...]`
    → `--cors-origins ...`, `access_log=False` → `--no-access-log`. `env` adds environment
    variables (e.g. FARM_API_KEY) to the child's.
    """

    stop_grace_s = 10.0

    def __init__(
        self,
        backends: Sequence[str],
        port: int | None = None,
        env: dict[str, str] | None = None,
        **flags: Any,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        argv = [sys.executable, "-m", "farm.proxy", "--host", self.host, "--port", str(self.port)]
        for backend in backends:
            argv += ["--backend", backend]
        for name, value in flags.items():
            argv += _flag(name, value)
        self.argv = argv
        self._env = {**os.environ, **(env or {})}
        super().__init__()

    def start(self) -> ProxyServer:
        """Start the process and wait until `/_health` answers."""
        self._proc = subprocess.Popen(self.argv, env=self._env, stdin=subprocess.DEVNULL)
        self.wait_for(self._answers, READY_TIMEOUT_S, "proxy did not start")
        return self

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"proxy exited with status {self._proc.returncode}: {self.argv}")
        try:
            self.health()
        except OSError:
            return False
        return True

    def health(self) -> tuple[int, dict[str, Any]]:
        """`GET /_health` → (status, document)."""
        try:
            with _OPENER.open(self.url + "/_health", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def metrics(self) -> str:
        """`GET /metrics` as text."""
        with _OPENER.open(self.url + "/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    @staticmethod
    def wait_for(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        """Poll `predicate` until it is true; raise TimeoutError after `timeout` seconds."""
        poll_until(predicate, timeout, what)


def _flag(name: str, value: Any) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if value is None:
        return []
    if name == "access_log":
        return [] if value else ["--no-access-log"]
    if isinstance(value, bool):
        return [flag] if value else []
    if isinstance(value, list | tuple):
        return [flag, *map(str, value)]
    return [flag, str(value)]
