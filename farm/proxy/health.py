"""Backend health probing: `/api/version`, `/api/ps` and `/api/tags`, on a timer and on demand."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from farm.proxy.payload import canonical_model
from farm.proxy.pool import Backend, BackendPool

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0


def _names(doc: Any) -> list[str]:
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, list):
        return []
    names = (m.get("model") or m.get("name") for m in models if isinstance(m, dict))
    return [canonical_model(n) for n in names if isinstance(n, str) and n]


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    async with session.get(url, timeout=timeout) as resp:
        if resp.status != 200:
            raise aiohttp.ClientResponseError(
                resp.request_info, resp.history, status=resp.status, message=resp.reason or ""
            )
        return await resp.json(content_type=None)


async def _stand_in(session: aiohttp.ClientSession, backend: Backend) -> tuple[bool, str | None]:
    """(synthetic, engine label) when the backend is the project's Ollama-API server: only it
    answers `/_sim/state` (a real Ollama answers 404). Asked so that `/_health`, and everything
    built on it, says what produced the numbers: synthetic tokens, or which real engine."""
    try:
        doc = await _get_json(session, backend.url + "/_sim/state")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False, None
    if not isinstance(doc, dict):
        return False, None
    engine = doc.get("engine")
    label = engine.get("label") if isinstance(engine, dict) else None
    return doc.get("synthetic") is True, label if isinstance(label, str) else None


async def probe(session: aiohttp.ClientSession, pool: BackendPool, backend: Backend) -> None:
    """Probe one backend and record the result in `pool`; never raises for a dead backend."""
    try:
        version_doc, ps_doc, tags_doc, (synthetic, engine) = await asyncio.gather(
            _get_json(session, backend.url + "/api/version"),
            _get_json(session, backend.url + "/api/ps"),
            _get_json(session, backend.url + "/api/tags"),
            _stand_in(session, backend),
        )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        pool.record_probe(backend, None, None, None, f"{type(exc).__name__}: {exc}")
        return
    version = version_doc.get("version") if isinstance(version_doc, dict) else None
    backend.synthetic = synthetic
    backend.engine = engine
    pool.record_probe(backend, version, _names(ps_doc), _names(tags_doc), None)


async def probe_all(session: aiohttp.ClientSession, pool: BackendPool) -> None:
    """Probe every backend concurrently."""
    await asyncio.gather(*(probe(session, pool, b) for b in pool.backends))


async def probe_forever(
    session: aiohttp.ClientSession, pool: BackendPool, interval_s: float
) -> None:
    """Probe all backends every `interval_s` seconds until cancelled."""
    while True:
        await probe_all(session, pool)
        await asyncio.sleep(interval_s)


def _backend_entry(b: Backend) -> dict[str, Any]:
    return {
        "url": b.url,
        "label": b.label,
        "source": b.source,
        "draining": b.draining,
        "reachable": b.up and b.version is not None,
        "version": b.version,
        "models_loaded": sorted(b.loaded),
        "in_flight": b.in_flight,
        "error": b.last_error,
        "synthetic": b.synthetic,
        "engine": b.engine,
    }


def health_document(
    pool: BackendPool,
    model: str | None,
    num_parallel: int | None,
    discovery: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `/_health` JSON: ready when a backend is up (holding `model` loaded, if one is set).

    `backends` lists the pool's backends, then any still draining (`"draining": true`, until
    their last exchange ends); `discovery` each `--backend-dns` name's last answer.
    """
    wanted = canonical_model(model) if model else None
    backends = [_backend_entry(b) for b in [*pool.backends, *pool.draining]]
    ready = any(
        b.up and b.version is not None and (wanted is None or wanted in b.loaded)
        for b in pool.backends
    )
    return {
        "ready": ready,
        "model": model,
        "num_parallel": num_parallel,
        "backends": backends,
        "in_flight": pool.in_flight,
        "synthetic": any(b.synthetic for b in pool.backends),
        "engine": next((b.engine for b in pool.backends if b.engine), None),
        "discovery": discovery or [],
    }
