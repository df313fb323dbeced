"""Targets: resolve where each path (direct, proxy, NKN) is, which model it serves, and warm it.

The proxy's `/_health` names the model and its backends, so `--target all` needs only the proxy
URL; the direct URL defaults to the proxy's first backend. Plain blocking httpx: this runs in the
CLI process before the clock starts, never inside the load generator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from bench.errors import TargetError
from bench.settings import BenchSettings

log = logging.getLogger(__name__)
DEFAULT_DIRECT_URL = "http://127.0.0.1:11434"


@dataclass(frozen=True, slots=True)
class Target:
    """One path to benchmark: its name, HTTP URL (None for NKN) and the model it serves."""

    name: str
    url: str | None
    model: str


def _get_json(client: httpx.Client, url: str) -> Any:
    """GET a JSON document; translate transport and decode failures into TargetError."""
    try:
        response = client.get(url)
        return response.json()
    except httpx.HTTPError as exc:
        raise TargetError(f"{url}: cannot reach target: {exc}") from exc
    except ValueError as exc:
        raise TargetError(f"{url}: answer is not JSON") from exc


def _headers(config: BenchSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def proxy_health(config: BenchSettings) -> dict[str, Any] | None:
    """The proxy's `/_health` document, or None when no proxy answers there."""
    with httpx.Client(timeout=5.0, headers=_headers(config)) as client:
        try:
            health = _get_json(client, config.proxy_endpoint.rstrip("/") + "/_health")
        except TargetError:
            return None
    return health if isinstance(health, dict) else None


def backend_model(url: str, config: BenchSettings) -> str:
    """A model the backend at `url` has: the first loaded one (`/api/ps`), else the first pulled."""
    with httpx.Client(timeout=5.0, headers=_headers(config)) as client:
        for path in ("/api/ps", "/api/tags"):
            doc = _get_json(client, url.rstrip("/") + path)
            models = doc.get("models") if isinstance(doc, dict) else None
            if models:
                return str(models[0]["name"])
    raise TargetError(f"{url}: the backend has no models; pass --model or pull one")


def resolve_targets(config: BenchSettings) -> tuple[Target, ...]:
    """The targets of `config` with URL and model filled in; raise TargetError when one is
    unreachable or under-specified (NKN without --relay-address)."""
    direct_url = config.direct_endpoint
    health = proxy_health(config) if "proxy" in config.target or not direct_url else None
    if "proxy" in config.target and health is None:
        raise TargetError(
            f"{config.proxy_endpoint}: no farm proxy answers /_health (is `invoke up` running?)"
        )
    if direct_url is None and health and health.get("backends"):
        direct_url = str(health["backends"][0]["url"])
    direct_url = direct_url or DEFAULT_DIRECT_URL
    model = config.model or (health or {}).get("model") or backend_model(direct_url, config)
    out = []
    for name in config.target:
        if name == "nkn" and not (config.relay_address or config.nkn_loopback):
            raise TargetError("--target nkn needs --relay-address (the relay's NKN address)")
        url = {"direct": direct_url, "proxy": config.proxy_endpoint, "nkn": None}[name]
        out.append(Target(name=name, url=url, model=model))
    return tuple(out)


def warm_model(url: str, model: str, config: BenchSettings) -> float:
    """Load `model` with an empty-prompt generate (Ollama's load-only request); return seconds."""
    with httpx.Client(timeout=config.timeout, headers=_headers(config)) as client:
        try:
            response = client.post(
                url.rstrip("/") + "/api/generate", json={"model": model, "prompt": ""}
            )
        except httpx.HTTPError as exc:
            raise TargetError(f"{url}: warm-up request failed: {exc}") from exc
    if response.status_code != 200:
        raise TargetError(f"{url}: warm-up got HTTP {response.status_code}: {response.text[:200]}")
    return response.elapsed.total_seconds()


def server_facts(url: str, config: BenchSettings) -> dict[str, Any]:
    """`/api/version` and `/api/ps` of a target for meta.json (errors recorded, not raised)."""
    facts: dict[str, Any] = {}
    with httpx.Client(timeout=5.0, headers=_headers(config)) as client:
        for key, path in (("version", "/api/version"), ("ps", "/api/ps")):
            try:
                facts[key] = _get_json(client, url.rstrip("/") + path)
            except TargetError as exc:
                facts[key] = {"error": str(exc)}
        facts["synthetic"] = _is_simulator(client, url)
    return facts


def _is_simulator(client: httpx.Client, url: str) -> bool:
    """Whether `url`, or any backend behind it when it is a farm proxy, is the simulator (its
    `/_sim/state` says `synthetic: true`), so results can never pass for a real model's."""
    urls = [url]
    try:
        health = client.get(url.rstrip("/") + "/_health").json()
        urls += [str(b["url"]) for b in health.get("backends", []) if isinstance(b, dict)]
    except (httpx.HTTPError, ValueError, AttributeError, KeyError):
        pass
    for candidate in urls:
        try:
            if client.get(candidate.rstrip("/") + "/_sim/state").json().get("synthetic") is True:
                return True
        except (httpx.HTTPError, ValueError, AttributeError):
            continue
    return False
