"""`ProxyServer`: the proxy in a subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from farm.common.childserver import ChildServer, poll_until
from farm.common.net import free_port
from farm.proxy.settings import ProxySettings
from farm.settings import child_env, process_environ, spec_of, to_argv

__all__ = ["ProxyServer", "free_port"]

READY_TIMEOUT_S = 20.0
# Loopback only: never route the helper's own requests through an HTTP(S)_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProxyServer(ChildServer):
    """Run `python -m farm.proxy` against `backends` until `stop()` (or the `with` block ends).

    Keywords are `ProxySettings` fields (`api_key="k"`, `cors_origins=[...]`,
    `access_log=False`); the child gets them as `to_argv` flags, and secrets such as the API
    key through its environment. `env` adds further variables to the child's environment.
    `max_open_files` starts the child under that descriptor limit (`ulimit -n`), soft and hard.
    """

    stop_grace_s = 10.0

    def __init__(
        self,
        backends: Sequence[str],
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        max_open_files: int | None = None,
        **settings: Any,
    ) -> None:
        self.max_open_files = max_open_files
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        self.settings = ProxySettings(
            backend=tuple(backends), host=self.host, port=self.port, **settings
        )
        self.argv = [sys.executable, "-m", "farm.proxy", *to_argv(self.settings)]
        # A setting passed here must reach the child as passed, even when it equals the default
        # (which `to_argv` leaves out): the variable that could override it is dropped.
        child = {**process_environ(), **(env or {})}
        for name in ("backend", "host", "port", *settings):
            for key in spec_of(ProxySettings, name).env:
                child.pop(key, None)
        self._env = {**child, **child_env(self.settings)}
        super().__init__()

    def start(self) -> ProxyServer:
        """Start the process and wait until `/_health` answers."""
        self._proc = subprocess.Popen(
            self.argv, env=self._env, stdin=subprocess.DEVNULL, preexec_fn=self._limit_files
        )
        self.wait_for(self._answers, READY_TIMEOUT_S, "proxy did not start")
        return self

    def _limit_files(self) -> None:
        # Runs in the child between fork and exec.
        if self.max_open_files is not None:
            limit = self.max_open_files
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

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
