"""`RpcCall`, one JSON-RPC 2.0 call as nkn-sdk sends it to its seed node, and the error object.

nkn-sdk POSTs `{"id": "nkn-sdk-js", "jsonrpc": "2.0", "method": ..., "params": {...}}`. Decoding
checks that shape and nothing more (a single call, no batch; a string method; params an object
or array; an id that is a string, a number or null), so that only a well-formed call, rebuilt
from the four fields, travels on. Malformed input raises `RpcRefused` with HTTP 400 and the
JSON-RPC code that names the fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from farm.webdemo.errors import RpcRefused

# JSON-RPC 2.0's error codes; -32000 to -32099 are left to the server.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
SERVER_ERROR = -32000

CallId = str | int | float | None


def _no_constants(name: str) -> Any:
    # json accepts NaN and Infinity, which are not JSON: the node would choke on them.
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class RpcCall:
    """A checked JSON-RPC 2.0 call: `method`, its `params` and the caller's `call_id`."""

    method: str
    params: dict[str, Any] | list[Any]
    call_id: CallId

    @classmethod
    def decode(cls, body: bytes) -> RpcCall:
        """Parse and check one call; raise `RpcRefused` (HTTP 400) on any other shape."""
        try:
            doc = json.loads(body, parse_constant=_no_constants)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
            raise RpcRefused(400, PARSE_ERROR, "parse error: the body is not JSON") from None
        if not isinstance(doc, dict):
            raise RpcRefused(400, INVALID_REQUEST, "expected one JSON-RPC call (an object)")
        call_id = doc.get("id")
        if isinstance(call_id, bool) or not isinstance(call_id, str | int | float | None):
            raise RpcRefused(400, INVALID_REQUEST, "id must be a string, a number or null")
        if doc.get("jsonrpc") != "2.0":
            raise RpcRefused(400, INVALID_REQUEST, 'jsonrpc must be "2.0"', call_id)
        method = doc.get("method")
        if not isinstance(method, str):
            raise RpcRefused(400, INVALID_REQUEST, "method must be a string", call_id)
        params = doc.get("params", {})
        if not isinstance(params, dict | list):
            raise RpcRefused(400, INVALID_REQUEST, "params must be an object or an array", call_id)
        return cls(method, params, call_id)

    def encode(self) -> dict[str, Any]:
        """The call as the node gets it: the four fields, nothing else the caller sent."""
        return {"jsonrpc": "2.0", "id": self.call_id, "method": self.method, "params": self.params}


def error_object(code: int, message: str, call_id: object = None) -> dict[str, Any]:
    """A JSON-RPC 2.0 error response: what nkn-sdk reads as a `ServerError`."""
    return {"jsonrpc": "2.0", "id": call_id, "error": {"code": code, "message": message}}
