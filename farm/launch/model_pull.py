"""Pull the model through the backend's `/api/pull`, drawing each layer's byte progress.

The stream is NDJSON progress objects ending in `{"status":"success"}`. An unknown model still
answers HTTP 200 (the server streams "pulling manifest" before it knows the outcome) and then
sends `{"error": ...}`, so success is only the explicit `success` status: a stream that ends
without it is a failed pull.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from farm.launch.errors import PullError
from farm.launch.progress import PullProgress

log = logging.getLogger(__name__)


def pull_model(
    base_url: str,
    model: str,
    timeout_s: float = 3600.0,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Pull `model` on the backend at `base_url`; PullError with the server's reason on failure.
    `transport` is httpx's seam (tests pass a MockTransport)."""
    timeout = httpx.Timeout(30.0, read=timeout_s)
    seen_success = False
    try:
        with (
            httpx.Client(timeout=timeout, trust_env=False, transport=transport) as client,
            client.stream(
                "POST", f"{base_url}/api/pull", json={"model": model, "stream": True}
            ) as resp,
            PullProgress(model) as bars,
        ):
            if resp.status_code != 200:
                resp.read()
                raise PullError(f"pull {model}: HTTP {resp.status_code}: {_error_of(resp.text)}")
            for line in resp.iter_lines():
                if line.strip():
                    status = _show(model, _decode(line), bars)
                    seen_success = seen_success or status == "success"
    except httpx.HTTPError as exc:
        raise PullError(f"pull {model}: connection to {base_url} failed ({exc})") from exc
    if not seen_success:
        raise PullError(f"pull {model}: the stream ended before success (cut or interrupted)")


def _show(model: str, event: dict[str, Any], bars: PullProgress) -> str:
    """Draw one progress event (or log a phase); returns its status; raises on an error line."""
    if "error" in event:
        raise PullError(f"pull {model}: {event['error']}")
    status = str(event.get("status", ""))
    if event.get("digest") and event.get("total"):
        label = status.removeprefix("pulling ")
        bars.update(
            str(event["digest"]), label, int(event.get("completed", 0)), int(event["total"])
        )
    elif status:
        log.info("pull %s: %s", model, status)
    return status


def _decode(line: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PullError(f"pull: the backend sent a line that is not JSON: {line[:80]!r}") from exc
    if not isinstance(event, dict):
        raise PullError(f"pull: the backend sent a non-object line: {line[:80]!r}")
    return event


def _error_of(body: str) -> str:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return body.strip()[:200]
    return str(data.get("error", data)) if isinstance(data, dict) else body[:200]
