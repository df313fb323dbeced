"""The local NKN node: seed JSON-RPC and the client websocket, on one loopback port.

It implements the node side of the nkn-sdk client protocol: answer `getwsaddr`, send
`authChallenge` at once, register addresses on `setClient`, and route `OutboundMessage`s to
every socket registered under each destination. It is a **local test
network**: no consensus, no sigchain, no relaying between nodes. Every routed message passes
the fault injector (`relay.localnode.injector`), which counts it per direction and, only when
the `--fault-*` settings say so, drops, duplicates, delays or reorders it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import ssl
import time
from collections import deque
from collections.abc import Callable

from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from farm.common.frontdoor.door import DoorLimits
from farm.common.frontdoor.fds import connection_cap
from relay.localnode.codec import (
    OUTBOUND_MESSAGE,
    RECEIPT,
    ClientMessage,
    OutboundMessage,
    inbound_frame,
)
from relay.localnode.door import LINGER_S, NodeDoor
from relay.localnode.errors import CodecError
from relay.localnode.rpc import (
    CORS_HEADERS,
    INVALID_METHOD,
    INVALID_PARAMS,
    INVALID_SIGNATURE,
    SUCCESS,
    handle_rpc,
)
from relay.localnode.settings import LocalNodeSettings
from relay.localnode.state import STATE, Held, NodeState

log = logging.getLogger(__name__)

TLS_SHUTDOWN_TIMEOUT_S = 5.0


def _valid_addr(addr: object) -> bool:
    if not isinstance(addr, str):
        return False
    pubkey = addr.rsplit(".", 1)[-1]
    return len(pubkey) == 64 and all(c in "0123456789abcdef" for c in pubkey.lower())


def _signature_ok(addr: str, challenge: bytes, msg: dict[str, object]) -> bool:
    """Check the ed25519 signature over sha256(challenge + salt), when the client sent one."""
    salt, signature = msg.get("ClientSalt"), msg.get("Signature")
    if salt is None and signature is None:
        return True  # old clients (and the real node) may skip it
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
        state.purge_expired()
        if holding_s > 0 and state.held_count() < state.config.max_held:
            state.held[dest].append(Held(time.monotonic() + holding_s, src, payload))
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
    holding_s = message.max_holding_seconds
    for dest, payload in routes:
        deliver = functools.partial(_deliver, state, dest, src, payload, holding_s)
        await state.injector.route(src, dest, len(payload), deliver)


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    state: NodeState = request.app[STATE]
    # compress=False: real nodes do not negotiate permessage-deflate, and here deflating every
    # frame on both ends was the largest single cost per DM (about half the node's CPU).
    ws = web.WebSocketResponse(
        max_msg_size=state.config.max_frame_bytes, autoping=True, compress=False
    )
    await ws.prepare(request)
    challenge = os.urandom(32)
    # Sent at once: without it the SDK waits 5 s before setClient.
    await ws.send_json(
        {"Action": "authChallenge", "Challenge": challenge.hex(), "Error": 0, "Desc": "SUCCESS"}
    )
    addr: str | None = None
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await _route(state, addr, msg.data)
            elif msg.type == WSMsgType.TEXT:
                new_addr = await _text(state, ws, msg.data, challenge, request.host)
                if new_addr is not None and addr not in (None, new_addr):
                    _unregister(state, ws, addr)  # a second setClient moves the socket
                addr = new_addr or addr
    finally:
        if addr is not None:
            _unregister(state, ws, addr)
    return ws


def _unregister(state: NodeState, ws: web.WebSocketResponse, addr: str | None) -> None:
    sockets = state.clients.get(addr or "")
    if sockets is None:
        return
    sockets.discard(ws)
    if not sockets:
        del state.clients[addr or ""]
    log.info("client left: %s", addr)


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
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    if request.method == "POST":
        return await handle_rpc(request)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(request)
    if request.path == "/_localnode/state":
        return web.json_response(request.app[STATE].snapshot())
    return web.Response(
        text="NKN local test network node: POST JSON-RPC or open a websocket\n", status=400
    )


async def _close_sockets(app: web.Application) -> None:
    state: NodeState = app[STATE]
    await state.injector.close()
    for sockets in list(state.clients.values()):
        for ws in list(sockets):
            await ws.close()


def create_app(config: LocalNodeSettings) -> web.Application:
    """Build the node: JSON-RPC (POST, any path) and websocket (GET upgrade, any path)."""
    app = web.Application(client_max_size=config.client_max_body_size)
    app[STATE] = NodeState(config)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.on_shutdown.append(_close_sockets)
    return app


def _runner(config: LocalNodeSettings) -> web.AppRunner:
    """aiohttp's runner, its handler bounded by the node's limits (see `relay.localnode.door`)."""
    return web.AppRunner(
        create_app(config),
        access_log=None,
        max_line_size=config.max_request_line,
        max_field_size=config.max_request_line,
        max_headers=config.max_headers,
        keepalive_timeout=config.keepalive_timeout,
        lingering_time=LINGER_S,
    )


async def serve(config: LocalNodeSettings, on_ready: Callable[[str], None]) -> None:
    """Run the node until cancelled; `on_ready` gets the base URL once the port is bound.

    The listening socket is the node's own (`loop.create_server`), not an aiohttp site, so
    that every connection passes the door first.
    """
    ssl_context = None
    if config.tls:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(str(config.certfile), str(config.keyfile))
    runner = _runner(config)
    await runner.setup()
    limits = DoorLimits.of(config, connection_cap(config.max_connections))
    if runner.server is None:
        raise RuntimeError("aiohttp's runner made no server at setup")
    door = NodeDoor(runner.server, limits)
    listener: asyncio.Server | None = None
    try:
        listener = await asyncio.get_running_loop().create_server(
            door,
            config.host,
            config.port,
            ssl=ssl_context,
            # A peer that never answers our TLS close_notify holds its socket this long at most.
            ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S if ssl_context else None,
        )
        port = listener.sockets[0].getsockname()[1]  # the bound port, also for port 0
        scheme = "https" if config.tls else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        on_ready(f"{scheme}://{host}:{port}")
        await asyncio.Event().wait()
    finally:
        if listener is not None:
            listener.close()
        await runner.cleanup()
