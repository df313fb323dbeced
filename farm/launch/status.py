"""`status`: what the recorded farm is doing right now, asked of the servers themselves.

Backends report their version and loaded models (`/api/ps`); the proxy reports readiness, slots
and in-flight streams (`/_health`); `nvidia-smi`, where present, reports GPU memory.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import httpx

from farm.launch import children
from farm.launch.state import FarmState
from farm.sim.engines.llamacpp.engine import LABEL as ENGINE_LABEL


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """One backend as it answered (or did not)."""

    kind: str
    url: str
    reachable: bool
    version: str | None
    loaded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FarmStatus:
    """The whole farm: proxy health, backends and GPU memory lines."""

    state: FarmState
    proxy_ready: bool
    proxy_alive: bool
    in_flight: int | None
    slots: int
    backends: tuple[BackendStatus, ...]
    gpus: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        """Proxy ready and every backend reachable."""
        return self.proxy_ready and all(b.reachable for b in self.backends)


def _get_json(client: httpx.Client, url: str) -> dict[str, object] | None:
    try:
        resp = client.get(url)
        data = (
            resp.json()
            if resp.headers.get("content-type", "").startswith("application/json")
            else None
        )
    except (httpx.HTTPError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _backend(client: httpx.Client, kind: str, url: str) -> BackendStatus:
    version = _get_json(client, f"{url}/api/version")
    ps = _get_json(client, f"{url}/api/ps")
    models = ps.get("models") if ps else None
    loaded = (
        tuple(str(m.get("name")) for m in models if isinstance(m, dict))
        if isinstance(models, list)
        else ()
    )
    return BackendStatus(
        kind=kind,
        url=url,
        reachable=version is not None,
        version=str(version.get("version")) if version else None,
        loaded=loaded,
    )


def gpu_memory() -> tuple[str, ...]:
    """`name: used/total MiB` per GPU, or nothing where nvidia-smi is absent."""
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.used,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return ("nvidia-smi failed",)
    rows = [[c.strip() for c in line.split(",")] for line in out.strip().splitlines()]
    return tuple(f"{r[0]}: {r[1]}/{r[2]} MiB" for r in rows if len(r) == 3)


def collect(record: FarmState) -> FarmStatus:
    """Ask the proxy and every backend; never raises for an unreachable server."""
    with httpx.Client(timeout=3.0, trust_env=False) as client:
        health = _get_json(client, f"{record.front_url}/_health")
        backends = tuple(_backend(client, b.kind, b.url) for b in record.backends)
    slots = health.get("num_parallel") if health else None
    in_flight = health.get("in_flight") if health else None
    return FarmStatus(
        state=record,
        proxy_ready=bool(health and health.get("ready")),
        proxy_alive=children.find(record.proxy_pid, record.proxy_create_time) is not None,
        in_flight=in_flight if isinstance(in_flight, int) else None,
        slots=slots if isinstance(slots, int) else record.num_parallel,
        backends=backends,
        gpus=gpu_memory(),
    )


def render(status: FarmStatus) -> list[str]:
    """Human-readable lines for `invoke status`."""
    rec = status.state
    label = {
        "sim": " (SIMULATOR: synthetic)",
        "engine": f" (engine: {ENGINE_LABEL})",
    }.get(rec.mode, "")
    proxy = "ready" if status.proxy_ready else ("not ready" if status.proxy_alive else "down")
    flight = "?" if status.in_flight is None else str(status.in_flight)
    lines = [
        f"farm: mode {rec.mode}{label}, model {rec.model}, started {rec.started_at}",
        f"proxy: {rec.front_url} {proxy}, in flight {flight}",
        f"slots: {status.slots} per backend (num_parallel), {len(rec.backends)} backend(s)",
    ]
    for i, b in enumerate(status.backends, 1):
        if not b.reachable:
            lines.append(f"backend {i}: {b.kind} {b.url} unreachable")
            continue
        models = ", ".join(b.loaded) or "none"
        lines.append(f"backend {i}: {b.kind} {b.url} version {b.version}, loaded: {models}")
    lines += [f"gpu: {g}" for g in status.gpus] or ["gpu: nvidia-smi not found"]
    return lines
