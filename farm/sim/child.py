"""`SimServer`: the simulator as a real subprocess on a loopback port, for tests and benches.

    with SimServer(num_parallel=2, load_ms=50) as sim:
        ollama.Client(host=sim.url).generate(model="gemma3:4b", prompt="hi")
        sim.wait_for(lambda s: s["requests"]["finished"] == 1)

Keyword flags become `python -m farm.sim` flags (`num_parallel=2` → `--num-parallel 2`,
`empty_store=True` → `--empty-store`).

It does not build on `farm.common.childserver` like the other child servers, so that the
simulator's own process handling stays independent of what it is used to check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from farm.common.net import free_port

READY_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.01


def _argv(flags: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return args


class SimServer:
    """Context manager running `python -m farm.sim` on 127.0.0.1 until `stop()`/exit."""

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        **flags: Any,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._flags = flags
        self._env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()
        self._final_output = ""
        self._client = httpx.Client(base_url=self.url, trust_env=False, timeout=10.0)

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimServer:
        """Start the subprocess and wait until it answers `GET /api/version`."""
        argv = [sys.executable, "-m", "farm.sim", "--host", self.host, "--port", str(self.port)]
        env = {**os.environ, **self._env}
        env.pop("OLLAMA_HOST", None)
        self._proc = subprocess.Popen(
            argv + _argv(self._flags), stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {self._proc.returncode}: {self.output()}"
                )
            try:
                if self._client.get("/api/version").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(POLL_INTERVAL_S)
        self.kill()
        raise TimeoutError(f"simulator not ready after {READY_TIMEOUT_S}s: {self.output()}")

    def stop(self) -> None:
        """Terminate the subprocess (SIGTERM, then SIGKILL if it lingers)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._client.close()

    def kill(self) -> None:
        """SIGKILL the simulator at once (a dying backend)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def output(self) -> str:
        """Everything the subprocess printed so far (kept after the server stopped)."""
        if self._log.closed:
            return self._final_output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._final_output = self.output()
        self._log.close()

    # ----- introspection -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """`GET /_sim/state` as a dict."""
        response = self._client.get("/_sim/state")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll `/_sim/state` until `predicate(state)` holds; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        state = self.state()
        while not predicate(state):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s; last state: {state}")
            time.sleep(POLL_INTERVAL_S)
            state = self.state()
        return state
