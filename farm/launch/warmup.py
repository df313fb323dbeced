"""Warm-up: load the model into memory with the farm's keep-alive and pinned options.

The request pins `num_ctx` and `num_gpu` to the same values the proxy pins on every client
request, so the runner loaded here is the one clients use: Ollama reloads a runner when a
request brings another `num_ctx`, or any `num_gpu` other than -1. An empty prompt would load the
model too, but its reply (`done_reason: "load"`) carries no timings, so one token is generated
to get `load_duration` back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from farm.launch.errors import WarmupError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WarmupResult:
    """Server-reported timings of the warm-up request."""

    load_duration_ns: int
    total_duration_ns: int


def keep_alive_value(keepalive: str) -> str | int:
    """Integer seconds travel as a JSON number; a bare digit string is not a Go duration."""
    return int(keepalive) if keepalive.lstrip("-").isdigit() else keepalive


def warm_up(
    base_url: str,
    model: str,
    keepalive: str,
    num_ctx: int,
    num_gpu: int,
    timeout_s: float = 900.0,
    transport: httpx.BaseTransport | None = None,
) -> WarmupResult:
    """Load `model` and return the server's load_duration; WarmupError on any failure.
    `transport` is httpx's seam (tests pass a MockTransport)."""
    body = {
        "model": model,
        "prompt": "Hi",
        "stream": False,
        "keep_alive": keep_alive_value(keepalive),
        "options": {"num_ctx": num_ctx, "num_gpu": num_gpu, "num_predict": 1},
    }
    try:
        timeout = httpx.Timeout(30.0, read=timeout_s)
        with httpx.Client(timeout=timeout, trust_env=False, transport=transport) as client:
            resp = client.post(f"{base_url}/api/generate", json=body)
    except httpx.HTTPError as exc:
        raise WarmupError(f"warm-up of {model} at {base_url} failed ({exc})") from exc
    try:
        data = resp.json()
    except ValueError:
        data = {}
    if resp.status_code == 404:
        raise WarmupError(
            f"model {model} is not on the backend at {base_url}; drop --no-pull to pull it"
        )
    if resp.status_code != 200 or "error" in data:
        reason = data.get("error") if isinstance(data, dict) else None
        raise WarmupError(f"warm-up of {model} failed: HTTP {resp.status_code}: {reason}")
    return WarmupResult(
        load_duration_ns=int(data.get("load_duration", 0)),
        total_duration_ns=int(data.get("total_duration", 0)),
    )
