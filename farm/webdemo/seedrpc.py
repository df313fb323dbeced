"""The site's seed RPC forwarder, `POST /nkn-rpc`: nkn-sdk's connect calls, to the set node.

nkn-sdk POSTs JSON-RPC with axios; a node that sends no CORS headers (the local test node)
cannot be called cross-origin from the page, so the page calls the site instead. A call
passes, in this order, and is refused with a JSON-RPC error object otherwise:

1. a node is configured (`--nkn-rpc`), else 404;
2. the caller's address has a token left (`--nkn-rpc-rate`, `--nkn-rpc-burst`), else 429;
3. the body is JSON by Content-Type, else 415: a cross-site form or text/plain POST needs no
   CORS preflight, so it is refused outright;
4. the body, declared or streamed, is at most `--nkn-rpc-max-body` bytes (or the smaller
   `--client-max-body-size`), else 413 as soon as the bound is passed: the body is read chunk
   by chunk and never held past the bound;
5. it is one JSON-RPC 2.0 call (`RpcCall.decode`), else 400;
6. its method is one of the SDK's connect methods, else 403, so the forwarder cannot be used
   to drive the node's other methods.

A refusal sent before the whole body was read closes the connection, so the rest of a large
body is not received at all.
"""

from __future__ import annotations

import logging
import math

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from farm.webdemo.errors import RpcRefused
from farm.webdemo.headers import SECURITY_HEADERS
from farm.webdemo.ratelimit import RateLimiter
from farm.webdemo.rpccall import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    SERVER_ERROR,
    RpcCall,
    error_object,
)
from farm.webdemo.settings import SiteSettings

log = logging.getLogger(__name__)

#: The JSON-RPC methods nkn-sdk's client calls on its seed node to connect.
CONNECT_METHODS = frozenset(
    {"getwsaddr", "getwssaddr", "getnodestate", "getregistrant", "getlatestblockhash"}
)


async def forward(
    request: Request, settings: SiteSettings, client: httpx.AsyncClient, limiter: RateLimiter
) -> Response:
    """Check one seed RPC call (see the module's list), pass it to the node, return its answer."""
    body_read = False
    address = request.client.host if request.client is not None else ""
    try:
        _admit(request, settings, limiter, address)
        body = await read_bounded(request, settings.rpc_body_limit)
        body_read = True
        call = RpcCall.decode(body)
        if call.method not in CONNECT_METHODS:
            raise RpcRefused(
                403, METHOD_NOT_FOUND, f"method {call.method!r} is not forwarded", call.call_id
            )
        return await _post(settings, call, client)
    except RpcRefused as exc:
        retry_after_s = limiter.retry_after_s(address) if exc.status == 429 else None
        return refusal(exc, close=not body_read, retry_after_s=retry_after_s)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody reads it; uvicorn drops it


def _admit(request: Request, settings: SiteSettings, limiter: RateLimiter, address: str) -> None:
    """The checks made before any of the body is read: node, rate, Content-Type."""
    if settings.nkn_rpc is None:
        raise RpcRefused(404, SERVER_ERROR, "no NKN seed RPC configured (--nkn-rpc)")
    if not limiter.allow(address):
        raise RpcRefused(429, SERVER_ERROR, "too many seed RPC calls from this address")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise RpcRefused(415, INVALID_REQUEST, "expected Content-Type: application/json")


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request's body, read chunk by chunk; `RpcRefused` (413) once it passes `limit`."""
    too_large = RpcRefused(413, INVALID_REQUEST, f"seed RPC call over {limit} bytes")
    declared = request.headers.get("content-length")
    # uvicorn's parser has already refused a malformed Content-Length.
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _post(settings: SiteSettings, call: RpcCall, client: httpx.AsyncClient) -> Response:
    node = settings.nkn_rpc or ""
    try:
        upstream = await client.post(node, json=call.encode())
    except httpx.HTTPError as exc:
        log.warning("NKN seed RPC %s failed: %s", node, exc)
        raise RpcRefused(
            502, SERVER_ERROR, f"NKN seed RPC unreachable: {exc}", call.call_id
        ) from exc
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type="application/json",
        headers=SECURITY_HEADERS,
    )


def refusal(
    exc: RpcRefused, *, close: bool = False, retry_after_s: float | None = None
) -> Response:
    """The JSON-RPC error answer for `exc`; `close` ends the connection after it."""
    headers = dict(SECURITY_HEADERS)
    if close:
        headers["Connection"] = "close"
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse(error_object(exc.code, exc.message, exc.call_id), exc.status, headers)
