"""CORS for browser callers (API keys live in `farm.proxy.tenants`)."""

from __future__ import annotations

from collections.abc import Sequence

from farm.proxy.headers import RawHeaders

_CORS_METHODS = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
_CORS_MAX_AGE = b"600"


class CorsPolicy:
    """Answers CORS for the configured origins; `*` allows any origin.

    With a policy in force the proxy owns CORS: it strips `Origin` before forwarding (Ollama
    would 403 an origin it does not know) and drops the backend's own CORS headers.
    """

    def __init__(self, origins: Sequence[str]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(o.rstrip("/").encode() for o in origins if o != "*")

    def allows(self, origin: bytes) -> bool:
        """Whether a browser page from `origin` may call the proxy."""
        return self._any or origin.rstrip(b"/") in self._origins

    def response_headers(self, origin: bytes) -> RawHeaders:
        """Headers added to an actual (non-preflight) response for an allowed origin."""
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", b"*"),
            (b"vary", b"Origin"),
        ]

    def preflight_headers(self, origin: bytes, requested: bytes | None) -> RawHeaders:
        """Headers for a successful preflight (`OPTIONS` with Access-Control-Request-Method)."""
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", _CORS_METHODS),
            (b"access-control-max-age", _CORS_MAX_AGE),
            (b"vary", b"Origin"),
        ]
        if requested:
            headers.append((b"access-control-allow-headers", requested))
        return headers
