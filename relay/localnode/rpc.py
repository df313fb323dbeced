"""The local node's seed JSON-RPC: `getwsaddr`/`getwssaddr` and the few calls the SDK makes."""

from __future__ import annotations

import json

from aiohttp import web

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


async def handle_rpc(request: web.Request) -> web.Response:
    """Answer one seed JSON-RPC POST (any path), with CORS headers for browser pages."""
    state: NodeState = request.app[STATE]
    try:
        body = await request.json(loads=json.loads)
        method = body["method"]
    except (ValueError, KeyError, TypeError):
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


def _reply(body: dict[str, object]) -> web.Response:
    return web.json_response(body, headers=CORS_HEADERS)
