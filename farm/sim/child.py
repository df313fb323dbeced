"""`SimServer`: the simulator as a real subprocess on a loopback port, for tests and benches.

    with SimServer(num_parallel=2, load_ms=50) as sim:
        ollama.Client(host=sim.url).generate(model="gemma3:4b", prompt="hi")
        sim.wait_for(lambda s: s["requests"]["finished"] == 1)

Keywords are `SimSettings` fields; the child gets them as `to_argv` flags
(`num_parallel=2` → `--num-parallel 2`, `empty_store=True` → `--empty-store`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from farm.common.childserver import ChildServer
from farm.common.net import free_port
from farm.settings import child_env, process_environ, spec_of, to_argv
from farm.sim.settings import SimSettings

READY_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.01


def child_environ(
    base: Mapping[str, str], settings: SimSettings, given: Iterable[str]
) -> dict[str, str]:
    """`base` without the variables of the settings in `given`, plus `child_env(settings)`.

    A setting passed explicitly must reach the child as passed, even when it equals the
    default (which `to_argv` leaves out): so the variable that could override it goes.
    """
    env = dict(base)
    for name in given:
        for key in spec_of(SimSettings, name).env:
            env.pop(key, None)
    return {**env, **child_env(settings)}


class SimServer(ChildServer):
    """Context manager running `python -m farm.sim` (on loopback unless `host=` says otherwise)
    until `stop()`/exit; `port` defaults to a free one, `env` adds variables for the child."""

    def __init__(
        self,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.host = str(settings.pop("host", spec_of(SimSettings, "host").default))
        self.port = port if port is not None else free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        self.settings = SimSettings(host=self.host, port=self.port, **settings)
        self.argv = [sys.executable, "-m", "farm.sim", *to_argv(self.settings)]
        base = {**process_environ(), **(env or {})}
        self._env = child_environ(base, self.settings, ["host", "port", *settings])
        self._log = tempfile.TemporaryFile()
        self._final_output = ""
        self._client = httpx.Client(base_url=self.url, trust_env=False, timeout=10.0)

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimServer:
        """Start the subprocess and wait until it answers `GET /api/version`."""
        self._proc = proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self._env
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {proc.returncode}: {self.output()}")
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
        super().stop()
        self._client.close()

    def output(self) -> str:
        """Everything the subprocess printed so far (kept after the server stopped)."""
        if self._log.closed:
            return self._final_output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

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
