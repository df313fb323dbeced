"""The local node's seed JSON-RPC: `getwsaddr`/`getwssaddr` and the few calls the SDK makes.

The body is read chunk by chunk, at most `--client-max-body-size` bytes (a larger declared
length is refused before a byte of it is read; 0: no cap) and with at most `--client-body-timeout`
between two chunks; past either bound the answer is a JSON-RPC error (413, 408) and the
connection ends.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from relay.localnode.errors import BodyRefused
from relay.localnode.state import STATE, NodeState

# Node error codes the SDK understands (nkn api/common/errcode).
SUCCESS = 0
INVALID_METHOD = 42001
INVALID_PARAMS = 42002
INVALID_SIGNATURE = 42003

# Browser pages (the demo site) call the seed RPC cross-origin, as they do with real NKN nodes,
# so answer CORS preflights and allow any origin: the node holds no secrets.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def _error(code: int, message: str, req_id: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


async def handle_rpc(request: web.Request) -> web.StreamResponse:
    """Answer one seed JSON-RPC POST (any path), with CORS headers for browser pages."""
    state: NodeState = request.app[STATE]
    config = state.config
    try:
        raw = await _read_body(request, config.client_max_body_size, config.client_body_timeout)
    except BodyRefused as exc:
        return await _refuse_body(request, exc)
    try:
        body = json.loads(raw)
        method = body["method"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return _reply(_error(-32700, "parse error: expected a JSON-RPC object", None))
    req_id = body.get("id")
    if method in ("getwsaddr", "getwssaddr"):
        result: object = state.node_info(request.host)
    elif method == "getnodestate":
        result = {"syncState": "PERSIST_FINISHED", "height": 0, "id": state.node_id}
    elif method == "getlatestblockhash":
        result = {"hash": "00" * 32, "height": 0}
    elif method == "getregistrant":
        result = {"registrant": "", "expiresAt": 0}
    else:
        # The SDK stops retrying at once on 42001 (invalid method) instead of backing off.
        return _reply(_error(INVALID_METHOD, f"{INVALID_METHOD} invalid method", req_id))
    return _reply({"jsonrpc": "2.0", "id": req_id, "result": result})


async def _refuse_body(request: web.Request, exc: BodyRefused) -> web.StreamResponse:
    response = _reply(_error(-32600, str(exc), None), exc.status)
    # Keep-alive ends. After a 413 aiohttp drains what is left of the body for at most its
    # lingering time, so that a client still sending reads this answer; a stalled client (408)
    # sends nothing more, so its connection is closed as soon as the answer is out.
    response.force_close()
    if exc.status == 408 and request.transport is not None:
        await response.prepare(request)
        await response.write_eof()
        request.transport.close()
    return response


async def _read_body(request: web.Request, limit: int, chunk_timeout_s: float) -> bytes:
    """The body, chunk by chunk; `limit` 0 means no cap. Raises `BodyRefused` past a bound."""
    limit = limit or sys.maxsize
    if request.content_length is not None and request.content_length > limit:
        raise BodyRefused(413, f"request body over {limit} bytes")
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(chunk_timeout_s):
                chunk = await request.content.readany()
        except TimeoutError:
            raise BodyRefused(408, f"no body bytes for {chunk_timeout_s:g} s") from None
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise BodyRefused(413, f"request body over {limit} bytes")


def _reply(body: dict[str, object], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=CORS_HEADERS)
