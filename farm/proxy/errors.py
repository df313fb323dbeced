"""The proxy's error hierarchy, and the Ollama-shaped bodies it answers with.

Tree::

    ProxyError                 base; `status` is the HTTP status the client gets
    ├── BadPathError           400: a path that could mean two things (dot segment, escape...)
    ├── UnauthorizedError      401: API key missing, wrong or revoked
    ├── ForbiddenError         403: a key without the right (admin) for this call
    ├── TooManyRequestsError   429: a key over its limits (`retry_after_s`)
    ├── BodyTooLargeError      413: request body over `client_max_body_size`/`max_body_bytes`
    ├── BadGatewayError        502: no backend could be reached, or one broke the exchange
    ├── OutOfDescriptorsError  503: the proxy has no file descriptor left for a backend call
    ├── GatewayTimeoutError    504: a backend sent no response header within `header_timeout`
    └── StreamCutError         502: a response under way broke (the connection is dropped)

    ResolveError               a --backend-dns name could not be resolved (no client sees it:
                               discovery logs it, reports it in /_health and keeps the last answer)
"""

from __future__ import annotations

import json


class ProxyError(Exception):
    """Base of every error the proxy raises; `status` is the HTTP status to answer with."""

    status = 500


class BadPathError(ProxyError):
    """The request path is refused: it could name another path after decoding."""

    status = 400


class UnauthorizedError(ProxyError):
    """The request lacks the `Authorization: Bearer <key>` the proxy was started with."""

    status = 401


class ForbiddenError(ProxyError):
    """The key is valid but may not make this call (an admin route)."""

    status = 403


class TooManyRequestsError(ProxyError):
    """The key is over one of its limits; the client may retry after `retry_after_s`."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BodyTooLargeError(ProxyError):
    """The request body is larger than its route's cap."""

    status = 413


class BadGatewayError(ProxyError):
    """No backend answered: connection refused, reset, or closed before a response."""

    status = 502


class OutOfDescriptorsError(ProxyError):
    """The proxy ran out of file descriptors (`ulimit -n`) opening a backend connection."""

    status = 503


class GatewayTimeoutError(ProxyError):
    """The backend accepted the request but sent no response header in time."""

    status = 504


def error_body(message: str) -> bytes:
    """Encode `{"error": message}`, the body shape Ollama uses for every native error."""
    return json.dumps({"error": message}).encode()


def stream_error_event(message: str, sse: bool) -> bytes:
    """The in-band error that ends a broken stream: an NDJSON line, or an SSE error event.

    The SSE form carries OpenAI's error object, which is what Ollama's `/v1` routes use and
    what OpenAI client libraries raise on.
    """
    if not sse:
        return error_body(message) + b"\n"
    payload = {"error": {"message": message, "type": "api_error", "param": None, "code": None}}
    return b"event: error\ndata: " + json.dumps(payload).encode() + b"\n\n"


class StreamCutError(ProxyError):
    """A response already under way broke and cannot carry an in-band error.

    Raised to the ASGI server on purpose: it then drops the client connection without the
    final chunk, so the client sees a truncated body instead of a clean end.
    """

    status = 502


class ResolveError(Exception):
    """A resolver failed (timeout, server failure, unreadable hosts file): not an answer."""
