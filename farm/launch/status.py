"""`status`: what the recorded farm is doing right now, asked of the servers themselves.

Backends report their version and loaded models (`/api/ps`); the proxy reports readiness, slots
and in-flight streams per backend (`/_health`); the state file says which Docker engine and GPU
each backend holds; NVML, where a driver is present, reports this host's GPU memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from farm.common.sizes import binary
from farm.gpu.errors import NvmlUnavailable
from farm.gpu.inventory import read_inventory
from farm.launch import children
from farm.launch.backend import BackendRecord
from farm.launch.state import FarmState
from farm.sim.engines.llamacpp.engine import LABEL as ENGINE_LABEL


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """One backend as it answered (or did not), with where it runs and what it holds."""

    kind: str
    url: str
    reachable: bool
    version: str | None
    loaded: tuple[str, ...]
    docker_host: str | None = None
    gpu: str | None = None
    in_flight: int | None = None


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


def _backend(client: httpx.Client, rec: BackendRecord, seen: dict[str, Any]) -> BackendStatus:
    url = rec.url
    version = _get_json(client, f"{url}/api/version")
    ps = _get_json(client, f"{url}/api/ps")
    flight = seen.get("in_flight")
    models = ps.get("models") if ps else None
    loaded = (
        tuple(str(m.get("name")) for m in models if isinstance(m, dict))
        if isinstance(models, list)
        else ()
    )
    return BackendStatus(
        kind=rec.kind,
        url=url,
        reachable=version is not None,
        version=str(version.get("version")) if version else None,
        loaded=loaded,
        docker_host=rec.docker_host,
        gpu=rec.gpu,
        in_flight=flight if isinstance(flight, int) else None,
    )


def gpu_memory() -> tuple[str, ...]:
    """`gpu N name: used/total` for each GPU of this host (NVML); nothing without a driver."""
    try:
        inventory = read_inventory()
    except NvmlUnavailable:
        return ()
    return tuple(
        f"{g.index} {g.name}: {binary(g.used_bytes)}/{binary(g.total_bytes)} used"
        for g in inventory.gpus
    )


def _health_backends(health: dict[str, object] | None) -> dict[str, Any]:
    """The proxy's view of each backend, by URL."""
    entries = health.get("backends") if health else None
    if not isinstance(entries, list):
        return {}
    return {str(e.get("url")): e for e in entries if isinstance(e, dict)}


def collect(record: FarmState) -> FarmStatus:
    """Ask the proxy and every backend; never raises for an unreachable server."""
    with httpx.Client(timeout=3.0, trust_env=False) as client:
        health = _get_json(client, f"{record.front_url}/_health")
        seen = _health_backends(health)
        backends = tuple(_backend(client, b, seen.get(b.url, {})) for b in record.backends)
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
    lines += _hosts(status.backends)
    for i, b in enumerate(status.backends, 1):
        holds = f" [{b.gpu}]" if b.gpu else ""
        if not b.reachable:
            lines.append(f"backend {i}: {b.kind} {b.url}{holds} unreachable")
            continue
        models = ", ".join(b.loaded) or "none"
        flight = "" if b.in_flight is None else f", in flight {b.in_flight}"
        lines.append(
            f"backend {i}: {b.kind} {b.url}{holds} version {b.version}, loaded: {models}{flight}"
        )
    lines += [f"gpu {g}" for g in status.gpus] or ["gpu: none seen on this host (no NVIDIA driver)"]
    return lines


def _hosts(backends: tuple[BackendStatus, ...]) -> list[str]:
    """One `host:` line per Docker engine the containers run on."""
    counts: dict[str, int] = {}
    for b in backends:
        if b.kind == "container":
            where = b.docker_host or "the local engine"
            counts[where] = counts.get(where, 0) + 1
    return [f"host: {h} ({n} backend{'s' if n > 1 else ''})" for h, n in counts.items()]
