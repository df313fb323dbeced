"""The front door's own answers: whole HTTP/1.1 responses with an `{"error": ...}` body.

The body has Ollama's error shape, which every server we ship uses for its errors. Each
answer closes the connection (`Connection: close`): after a rejected head the byte stream
cannot be trusted to frame another request.
"""

from __future__ import annotations

import http
import json

# The protocol's rejections, with the reason phrase HTTP gives each status.
BAD_REQUEST = 400
REQUEST_TIMEOUT = 408
URI_TOO_LONG = 414
HEADERS_TOO_LARGE = 431
SERVICE_UNAVAILABLE = 503


def error_json(message: str) -> bytes:
    """`{"error": message}` as bytes."""
    return json.dumps({"error": message}).encode()


def error_response(status: int, message: str, retry_after_s: int | None = None) -> bytes:
    """A complete response: status line, headers, `{"error": message}`; closes the connection."""
    body = error_json(message)
    phrase = http.HTTPStatus(status).phrase
    retry = b"" if retry_after_s is None else b"retry-after: %d\r\n" % retry_after_s
    return (
        b"HTTP/1.1 %d %s\r\n"
        b"content-type: application/json; charset=utf-8\r\n"
        b"content-length: %d\r\n"
        b"%s"
        b"connection: close\r\n"
        b"\r\n%s"
    ) % (status, phrase.encode(), len(body), retry, body)
