"""The Backend seam: one Ollama server the farm starts (or adopts), waits for and stops.

Implementations: `container.ContainerBackend` (docker SDK), `process.ProcessBackend`
(`ollama serve` or the simulator as a child process) and `external.ExternalBackend`
(`--backend-url`). Each can describe itself as a `BackendRecord` for the state file, so that a
later `down` or `status` in another process can find it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from farm.launch.errors import BackendNotReady

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackendRecord:
    """How to find a running backend again: its kind, URL and whichever handle applies."""

    kind: str  # "container" | "process" | "sim" | "engine" | "external"
    url: str
    name: str
    pid: int | None = None
    pid_create_time: float | None = None
    container_id: str | None = None
    docker_host: str | None = None
    log_path: str | None = None
    gpu: str | None = None  # what it holds: "gpu 0 <name> <uuid>", "all GPUs", "cpu (--cpu)"


class Backend(Protocol):
    """One Ollama server under the farm's control."""

    @property
    def url(self) -> str:
        """Base URL the farm (and the proxy) reach it at, e.g. http://127.0.0.1:11434."""
        ...

    def start(self) -> None:
        """Start it; raises BackendError (or a subclass) with a one-line reason."""
        ...

    def alive(self) -> bool:
        """False once it has exited (an external backend is always 'alive')."""
        ...

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its log, for error messages; '' when unavailable."""
        ...

    def stop(self) -> None:
        """Stop it and release its resources; safe to call twice."""
        ...

    def record(self) -> BackendRecord:
        """Its state-file record."""
        ...


def wait_ready(
    url: str,
    timeout_s: float,
    alive: Callable[[], bool],
    describe: Callable[[], str],
    path: str = "/",
) -> str:
    """Poll `GET url+path` until it answers 200; returns the body. Fails fast if `alive()` is
    False, and after `timeout_s` with `describe()` (e.g. the log tail) in the message."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                resp = client.get(url.rstrip("/") + path)
                if resp.status_code == 200:
                    return resp.text
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if not alive():
                raise BackendNotReady(f"{url} exited before it was ready. {describe()}".strip())
            if time.monotonic() >= deadline:
                raise BackendNotReady(
                    f"{url} did not answer within {timeout_s:.0f}s ({last}). {describe()}".strip()
                )
            # A short poll interval: readiness normally comes within a second of start.
            time.sleep(0.1)


INFERENCE_COMPUTE = 'msg="inference compute"'


def inference_compute(log_text: str) -> list[str]:
    """The devices Ollama reported at start-up: the rest of each `msg="inference compute"` log
    line, e.g. `id=GPU-... library=CUDA ...` or, on the CPU fallback, `id=cpu library=cpu`."""
    return [
        line.split(INFERENCE_COMPUTE, 1)[1].strip()
        for line in log_text.splitlines()
        if INFERENCE_COMPUTE in line
    ]
