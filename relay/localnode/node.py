"""The local NKN node: seed JSON-RPC and the client websocket, on one loopback port.

It implements the node side of the nkn-sdk client protocol (spec: nkn-protocol.md §7): answer
`getwsaddr`, send `authChallenge` at once, register addresses on `setClient`, and route
`OutboundMessage`s to every socket registered under each destination. It is a **local test
network**: no consensus, no sigchain, no relaying between nodes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import ssl
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from relay.localnode.codec import (
    OUTBOUND_MESSAGE,
    RECEIPT,
    ClientMessage,
    OutboundMessage,
    inbound_frame,
)
from relay.localnode.config import LocalNodeConfig
from relay.localnode.errors import CodecError

log = logging.getLogger(__name__)

# Node error codes the SDK understands (nkn api/common/errcode).
SUCCESS = 0
INVALID_METHOD = 42001
INVALID_PARAMS = 42002
INVALID_SIGNATURE = 42003


@dataclass
class _Held:
    expires: float
    src: str
    payload: bytes


@dataclass
class NodeState:
    """Who is connected and what was routed; lives on the app, never at module level."""

    config: LocalNodeConfig
    pubkey: str = field(default_factory=lambda: os.urandom(32).hex())
    node_id: str = field(default_factory=lambda: os.urandom(32).hex())
    clients: dict[str, set[web.WebSocketResponse]] = field(default_factory=lambda: defaultdict(set))
    held: dict[str, deque[_Held]] = field(default_factory=lambda: defaultdict(deque))
    delivered: int = 0
    dropped: int = 0

    def node_info(self, host: str) -> dict[str, str]:
        """The `getwsaddr` result; `addr` is where the client reached us (so TLS names match)."""
        # rpcAddr "" keeps the SDK from a second `getnodestate` round trip (spec §1.1).
        return {"addr": host, "rpcAddr": "", "pubkey": self.pubkey, "id": self.node_id, "sdp": ""}

    def held_count(self) -> int:
        """Messages waiting for an offline address."""
        return sum(len(q) for q in self.held.values())

    def snapshot(self) -> dict[str, object]:
        """JSON for `GET /_localnode/state` (tests wait on it)."""
        return {
            "local_test_network": True,
            "clients": sorted(a for a, s in self.clients.items() if s),
            "held": self.held_count(),
            "delivered": self.delivered,
            "dropped": self.dropped,
        }


STATE = web.AppKey("state", NodeState)


def _error(code: int, message: str, req_id: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


async def _rpc(request: web.Request) -> web.Response:
    state: NodeState = request.app[STATE]
    try:
        body = await request.json(loads=json.loads)
        method = body["method"]
    except (ValueError, KeyError, TypeError):
        return web.json_response(_error(-32700, "parse error: expected a JSON-RPC object", None))
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
        # The SDK stops retrying at once on 42001 (spec §1.1).
        return web.json_response(_error(INVALID_METHOD, f"{INVALID_METHOD} invalid method", req_id))
    return web.json_response({"jsonrpc": "2.0", "id": req_id, "result": result})


def _valid_addr(addr: object) -> bool:
    if not isinstance(addr, str):
        return False
    pubkey = addr.rsplit(".", 1)[-1]
    return len(pubkey) == 64 and all(c in "0123456789abcdef" for c in pubkey.lower())


def _signature_ok(addr: str, challenge: bytes, msg: dict[str, object]) -> bool:
    """Check the ed25519 signature over sha256(challenge + salt), when the client sent one."""
    salt, signature = msg.get("ClientSalt"), msg.get("Signature")
    if salt is None and signature is None:
        return True  # old clients (and the real node) may skip it; see spec §1.3
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(addr.rsplit(".", 1)[-1]))
        digest = hashlib.sha256(challenge + bytes.fromhex(str(salt))).digest()
        key.verify(bytes.fromhex(str(signature)), digest)
    except (ValueError, InvalidSignature):
        return False
    return True


async def _set_client(
    state: NodeState, ws: web.WebSocketResponse, msg: dict[str, object], challenge: bytes, host: str
) -> str | None:
    addr = msg.get("Addr")
    if not isinstance(addr, str) or not _valid_addr(addr):
        await ws.send_json({"Action": "setClient", "Error": INVALID_PARAMS, "Desc": "bad Addr"})
        return None
    if state.config.verify_signatures and not _signature_ok(addr, challenge, msg):
        await ws.send_json(
            {"Action": "setClient", "Error": INVALID_SIGNATURE, "Desc": "invalid signature"}
        )
        return None
    state.clients[addr].add(ws)
    result = {"node": state.node_info(host), "sigChainBlockHash": "00" * 32}
    await ws.send_json(
        {"Action": "setClient", "Error": SUCCESS, "Desc": "SUCCESS", "Result": result}
    )
    log.info("client registered: %s", addr)
    held = state.held.pop(addr, deque())
    now = time.monotonic()
    for item in held:
        if item.expires > now:
            await _deliver(state, addr, item.src, item.payload, 0)
    return addr


async def _deliver(state: NodeState, dest: str, src: str, payload: bytes, holding_s: int) -> None:
    sockets = list(state.clients.get(dest, ()))
    if not sockets:
        # Like the real node: drop for offline peers unless the sender asked us to hold it.
        if holding_s > 0 and state.held_count() < state.config.max_held:
            state.held[dest].append(_Held(time.monotonic() + holding_s, src, payload))
        else:
            state.dropped += 1
            log.debug("dropped message for offline %s", dest)
        return
    frame = inbound_frame(src, payload)
    for ws in sockets:
        try:
            await ws.send_bytes(frame)
            state.delivered += 1
        except ConnectionError:
            state.dropped += 1


async def _route(state: NodeState, src: str | None, data: bytes) -> None:
    try:
        outer = ClientMessage.decode(data)
        if outer.message_type == RECEIPT:
            return  # receipts feed the real node's proof of relay; nothing to do here
        if outer.message_type != OUTBOUND_MESSAGE:
            raise CodecError(f"unexpected message type {outer.message_type} from a client")
        if src is None:
            raise CodecError("binary frame before setClient")
        message = OutboundMessage.decode(outer.body())
        routes = message.routes()
    except CodecError as exc:
        state.dropped += 1
        log.warning("dropped a bad frame from %s: %s", src, exc)
        return
    for dest, payload in routes:
        await _deliver(state, dest, src, payload, message.max_holding_seconds)


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    state: NodeState = request.app[STATE]
    ws = web.WebSocketResponse(max_msg_size=state.config.max_frame_bytes, autoping=True)
    await ws.prepare(request)
    challenge = os.urandom(32)
    # Sent at once: without it the SDK waits 5 s before setClient (spec trap 2).
    await ws.send_json(
        {"Action": "authChallenge", "Challenge": challenge.hex(), "Error": 0, "Desc": "SUCCESS"}
    )
    addr: str | None = None
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await _route(state, addr, msg.data)
            elif msg.type == WSMsgType.TEXT:
                addr = await _text(state, ws, msg.data, challenge, request.host) or addr
    finally:
        if addr is not None:
            state.clients[addr].discard(ws)
            if not state.clients[addr]:
                del state.clients[addr]
            log.info("client left: %s", addr)
    return ws


async def _text(
    state: NodeState, ws: web.WebSocketResponse, data: str, challenge: bytes, host: str
) -> str | None:
    try:
        msg = json.loads(data)
        action = msg["Action"]
    except (ValueError, KeyError, TypeError):
        await ws.send_json({"Action": "", "Error": INVALID_PARAMS, "Desc": "expected JSON action"})
        return None
    if action == "setClient":
        return await _set_client(state, ws, msg, challenge, host)
    # The JS SDK sends no other text action; answer politely in JSON (trap 4).
    await ws.send_json({"Action": str(action), "Error": INVALID_METHOD, "Desc": "not supported"})
    return None


async def _dispatch(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await _rpc(request)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(request)
    if request.path == "/_localnode/state":
        return web.json_response(request.app[STATE].snapshot())
    return web.Response(
        text="NKN local test network node: POST JSON-RPC or open a websocket\n", status=400
    )


async def _close_sockets(app: web.Application) -> None:
    state: NodeState = app[STATE]
    for sockets in list(state.clients.values()):
        for ws in list(sockets):
            await ws.close()


def create_app(config: LocalNodeConfig) -> web.Application:
    """Build the node: JSON-RPC (POST, any path) and websocket (GET upgrade, any path)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[STATE] = NodeState(config)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.on_shutdown.append(_close_sockets)
    return app


async def serve(config: LocalNodeConfig, on_ready: Callable[[str], None]) -> None:
    """Run the node until cancelled; `on_ready` gets the base URL once the port is bound."""
    ssl_context = None
    if config.tls:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(str(config.certfile), str(config.keyfile))
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        await site.start()
        port = runner.addresses[0][1]  # the bound port, also when port 0 asked for any free one
        scheme = "https" if config.tls else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        on_ready(f"{scheme}://{host}:{port}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
