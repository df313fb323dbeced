"""Header rewriting between the client and a backend: hop-by-hop removal, Host, stream hints.

RFC 9110 §7.6.1 hop-by-hop headers belong to one connection and are dropped in both
directions, together with every header the `Connection` header names.
"""

from __future__ import annotations

from collections.abc import Iterable

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# Never forwarded upstream: the client library sets Host from the backend URL (which passes
# Ollama's DNS-rebinding guard on a loopback bind), frames the body itself, and
# uvicorn has already answered any `Expect: 100-continue`.
_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
STREAM_HINTS: RawHeaders = [(b"x-accel-buffering", b"no")]
_NO_CACHE = (b"cache-control", b"no-cache")


def _connection_named(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return named


def upstream_request_headers(
    headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()
) -> RawHeaders:
    """Headers to send upstream from the client's (lower-case ASGI) headers.

    `drop` adds names the proxy consumed itself (`authorization` when it checks an API key,
    `origin` when it answers CORS).
    """
    headers = list(headers)
    skip = _REQUEST_DROP | drop | _connection_named(headers)
    return [(name, value) for name, value in headers if name not in skip]


def downstream_response_headers(
    raw: Iterable[tuple[bytes, bytes]], drop_cors: bool = False
) -> tuple[RawHeaders, bool]:
    """Client-bound headers from a backend's raw headers; also says whether it is a stream.

    A response without `Content-Length` is a stream (Ollama's NDJSON and SSE are chunked): it
    gets `X-Accel-Buffering: no` and, unless the backend chose one, `Cache-Control: no-cache`,
    so that a buffering proxy further out passes it through at once.
    """
    raw = list(raw)
    skip = HOP_BY_HOP | _connection_named(raw)
    out: RawHeaders = []
    has_length = has_cache_control = False
    for name, value in raw:
        lname = name.lower()
        if lname in skip or (drop_cors and lname.startswith(b"access-control-")):
            continue
        if lname == b"content-length":
            has_length = True
        elif lname == b"cache-control":
            has_cache_control = True
        out.append((lname, value))
    streaming = not has_length
    if streaming:
        out.extend(STREAM_HINTS)
        if not has_cache_control:
            out.append(_NO_CACHE)
    return out, streaming


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of `name` (lower-case) in ASGI headers, or None."""
    for key, value in headers:
        if key == name:
            return value
    return None
