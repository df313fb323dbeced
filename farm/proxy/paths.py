"""Request paths: decoded and normalised once, and refused where they could name another path.

A proxy that forwards what it did not route by lets the backend resolve `/api/../x` or
`/api%2f..%2fx` into a path the proxy never allowed. So the path is decoded here once, and
refused (400) if it holds a dot segment, a percent-encoded slash, dot, backslash or NUL, a
backslash, a control character or bytes that are not UTF-8. What is routed and forwarded is
the normal form: runs of slashes merged (as nginx's `merge_slashes`), escapes decoded and
re-encoded only where RFC 3986 requires. Most paths are already normal; one regex says so.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from farm.proxy.errors import BadPathError

# A path made only of RFC 3986 path characters, without escapes, empty or dot segments.
_PLAIN = re.compile(rb"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+/?|/")
_REFUSED_ESCAPE = re.compile(rb"%(?:2[eEfF]|5[cC]|00)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters kept as they are when re-encoding (the RFC 3986 `pchar` set and "/").
_SAFE = "/-._~!$&'()*+,;=:@"


def normal_path(raw: bytes) -> bytes | None:
    """None when `raw` (a request path, no query) is already normal, else its normal form.

    Raises `BadPathError` for a path that is refused (see the module docstring).
    """
    if _PLAIN.fullmatch(raw):
        return None
    if not raw.startswith(b"/"):
        raise BadPathError("the request target must be a path starting with /")
    if b"\\" in raw:
        raise BadPathError("a backslash in the request path is not allowed")
    if _REFUSED_ESCAPE.search(raw):
        raise BadPathError("percent-encoded '.', '/', '\\' or NUL in the request path")
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPathError("the request path is not UTF-8") from None
    if _CONTROL.search(text):
        raise BadPathError("a control character in the request path is not allowed")
    segments = [s for s in text.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise BadPathError("'.' and '..' segments in the request path are not allowed")
    trailing = "/" if text.endswith("/") and segments else ""
    normal = quote("/" + "/".join(segments) + trailing, safe=_SAFE).encode("ascii")
    return None if normal == raw else normal


def with_normal_path(scope: dict[str, Any]) -> dict[str, Any]:
    """`scope` with its `path` and `raw_path` normalised (the same dict if already normal)."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    normal = normal_path(raw)
    if normal is None:
        return scope
    return {**scope, "raw_path": normal, "path": unquote_to_bytes(normal).decode("utf-8")}
