"""The upstream HTTP call of one relay request, seen as a queue of events.

A pump task owns the httpx response (`try/finally`), so cancelling the task closes the upstream
connection at once and the Ollama slot behind the proxy frees. It reports `Head`, then either
`Chunk`s and `Eof` (streaming) or one `Body` (capped), or a `Fail`; foreign httpx errors are
translated here, at the boundary, into the relay's wire error texts. A streamed body is read
one chunk at a time when the caller's `gate` opens, so a consumer that cannot keep up stops
the reading, and TCP then stops the upstream's writing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import httpx

from relay.frames import HttpSpec
from relay.policy import Target

log = logging.getLogger(__name__)

#: Response headers the relay never forwards: it decodes the body and re-frames it.
RESPONSE_DROP = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
)
MAX_HEADERS_B = 16_384


@dataclass(frozen=True, slots=True)
class Head:
    """The upstream answered: status and lower-cased headers."""

    status: int
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a streamed body (content-decoded)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Eof:
    """The streamed body ended normally."""


@dataclass(frozen=True, slots=True)
class Body:
    """A whole non-streamed body, cut at the cap when `truncated`."""

    data: bytes
    truncated: bool


@dataclass(frozen=True, slots=True)
class Fail:
    """The call failed: `error` is the wire text, `status` an HTTP-like code for the reply."""

    error: str
    status: int


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The request was stopped: the peer sent `relay.cancel`, or stopped acknowledging."""

    error: str = "cancelled"


Event: TypeAlias = Head | Chunk | Eof | Body | Fail | Cancelled


def response_headers(headers: httpx.Headers) -> dict[str, str]:
    """Lower-cased headers to relay, repeated ones joined, within a size budget."""
    out: dict[str, str] = {}
    used = 0
    for name, value in headers.multi_items():
        lower = name.lower()
        if lower in RESPONSE_DROP:
            continue
        used += len(lower) + len(value) + 4
        if used > MAX_HEADERS_B:
            break
        out[lower] = f"{out[lower]}, {value}" if lower in out else value
    return out


def build_request(client: httpx.AsyncClient, spec: HttpSpec, target: Target) -> httpx.Request:
    """The httpx request for a peer's spec; `timeout_ms` bounds each wait (connect, each read)."""
    kwargs: dict[str, Any] = {}
    headers = dict(target.headers)
    if spec.body_b64 is not None:
        kwargs["content"] = spec.body()
    elif spec.json is not None:
        kwargs["content"] = json.dumps(spec.json).encode("utf-8")
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    return client.build_request(
        spec.method,
        target.url,
        headers=headers,
        timeout=httpx.Timeout(spec.timeout_ms / 1000),
        **kwargs,
    )


async def pump(
    client: httpx.AsyncClient,
    request: httpx.Request,
    report: Callable[[Event], None],
    *,
    stream: bool,
    max_body_b: int,
    gate: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Perform the call and `report` it as events; never raises except on cancellation.

    When streaming, each chunk is read only after `await gate()` returned.
    """
    try:
        response = await client.send(request, stream=True)
        try:
            report(Head(response.status_code, response_headers(response.headers)))
            if stream:
                chunks = response.aiter_bytes()
                while True:
                    if gate is not None:
                        await gate()
                    try:
                        data = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    report(Chunk(data))
                report(Eof())
            else:
                report(await _read_capped(response, max_body_b))
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        report(Fail("timeout", 504))
    except httpx.HTTPError as exc:
        report(Fail(f"upstream: {_reason(exc)}", 502))


async def _read_capped(response: httpx.Response, cap: int) -> Body:
    body = bytearray()
    async for data in response.aiter_bytes():
        body += data
        if len(body) > cap:
            # Stop reading: the rest would be thrown away, and closing frees the upstream.
            return Body(bytes(body[:cap]), truncated=True)
    return Body(bytes(body), truncated=False)


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
