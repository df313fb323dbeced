"""The local node's side of the NKN client protocol, driven by a raw websocket client.

These pin the wire details the SDK depends on (spec nkn-protocol.md §0, §1, §2); the real SDK
runs against the node in test_sdk_clients.py and tests/relay/bridge.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.asyncio.client import ClientConnection, connect

from relay.localnode.child import LocalNode
from relay.localnode.codec import (
    INBOUND_MESSAGE,
    OUTBOUND_MESSAGE,
    ClientMessage,
    InboundMessage,
    OutboundMessage,
)

pytestmark = pytest.mark.anyio


def rpc(node: LocalNode, method: str, path: str = "/") -> dict[str, Any]:
    body = {"id": "t", "jsonrpc": "2.0", "method": method, "params": {}}
    response = httpx.post(f"{node.url}{path}", json=body, timeout=5)
    result: dict[str, Any] = response.json()
    return result


class RawClient:
    """A minimal NKN client: one key, one websocket, hand-built frames."""

    def __init__(self, ws: ClientConnection, identifier: str = "t") -> None:
        self.ws = ws
        self.challenge = b""
        self.key = Ed25519PrivateKey.generate()
        pubkey = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.addr = f"{identifier}.{pubkey}"

    async def register(self, signature: str | None = None) -> dict[str, Any]:
        if not self.challenge:
            self.challenge = bytes.fromhex(json.loads(await self.ws.recv())["Challenge"])
        salt = os.urandom(32)
        digest = hashlib.sha256(self.challenge + salt).digest()
        msg = {
            "Action": "setClient",
            "Addr": self.addr,
            "ClientSalt": salt.hex(),
            "Signature": signature or self.key.sign(digest).hex(),
        }
        await self.ws.send(json.dumps(msg))
        reply: dict[str, Any] = json.loads(await self.ws.recv())
        return reply

    async def send_to(self, dest: str, payload: bytes, holding_s: int = 0) -> None:
        body = OutboundMessage(dests=(dest,), payloads=(payload,), max_holding_seconds=holding_s)
        await self.ws.send(ClientMessage(OUTBOUND_MESSAGE, body.encode()).encode())

    async def receive(self) -> InboundMessage:
        frame = await self.ws.recv()
        assert isinstance(frame, bytes), "inbound messages must be binary frames"
        outer = ClientMessage.decode(frame)
        assert outer.message_type == INBOUND_MESSAGE
        return InboundMessage.decode(outer.body())


@asynccontextmanager
async def raw_client(node: LocalNode) -> AsyncIterator[RawClient]:
    async with connect(f"ws://127.0.0.1:{node.port}/", max_size=None) as ws:
        yield RawClient(ws)


def test_start_line_says_local_test_network() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay.localnode", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert "local test network" in line
    assert "not the real NKN network" in line


@pytest.mark.parametrize("method", ["getwsaddr", "getwssaddr"])
def test_getwsaddr_returns_itself_with_a_pubkey_string(local_node: LocalNode, method: str) -> None:
    result = rpc(local_node, method, path="/any/path")["result"]
    assert result["addr"] == f"127.0.0.1:{local_node.port}"
    assert len(result["pubkey"]) == 64  # a missing pubkey breaks every send (trap 3)
    assert result["rpcAddr"] == ""


def test_unknown_rpc_method_is_42001(local_node: LocalNode) -> None:
    reply = rpc(local_node, "getbalancebyaddr")
    assert reply["error"]["code"] == 42001
    assert "42001" in reply["error"]["message"]  # the SDK stops retrying on this text


def test_bad_rpc_body_is_an_error_and_the_node_stays_up(local_node: LocalNode) -> None:
    response = httpx.post(local_node.url, content=b"{not json", timeout=5)
    assert response.json()["error"]["code"] == -32700
    assert "result" in rpc(local_node, "getwsaddr")


async def test_auth_challenge_comes_first_and_set_client_succeeds(local_node: LocalNode) -> None:
    async with raw_client(local_node) as client:
        reply = await client.register()
    assert reply["Action"] == "setClient"
    assert reply["Error"] == 0
    assert len(reply["Result"]["node"]["pubkey"]) == 64
    assert "sigChainBlockHash" in reply["Result"]


async def test_websocket_declines_per_message_deflate(local_node: LocalNode) -> None:
    # Deflating every frame cost about half the node's CPU per DM; real nodes do not offer it.
    async with connect(f"ws://127.0.0.1:{local_node.port}/", compression="deflate") as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert json.loads(await ws.recv())["Action"] == "authChallenge"


async def test_forged_signature_is_refused(local_node: LocalNode) -> None:
    async with raw_client(local_node) as client:
        reply = await client.register(signature="00" * 64)
    assert reply["Error"] == 42003


async def test_message_is_routed_with_the_true_source(local_node: LocalNode) -> None:
    async with raw_client(local_node) as a, raw_client(local_node) as b:
        await a.register()
        await b.register()
        await a.send_to(b.addr, b"\x01\x02 opaque end-to-end bytes")
        got = await b.receive()
    assert got == InboundMessage(a.addr, b"\x01\x02 opaque end-to-end bytes")


async def test_five_megabyte_frame_is_forwarded(local_node: LocalNode) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    async with raw_client(local_node) as a, raw_client(local_node) as b:
        await a.register()
        await b.register()
        await a.send_to(b.addr, payload)
        got = await b.receive()
    assert got.payload == payload


async def test_held_message_is_delivered_when_the_peer_registers(local_node: LocalNode) -> None:
    async with raw_client(local_node) as a, raw_client(local_node) as b:
        await a.register()
        await a.send_to(b.addr, b"held", holding_s=30)
        local_node.wait_for(lambda s: s["held"] >= 1)
        await b.register()
        got = await b.receive()
    assert got == InboundMessage(a.addr, b"held")


async def test_garbage_frames_are_dropped_without_harm(local_node: LocalNode) -> None:
    async with raw_client(local_node) as a, raw_client(local_node) as b:
        await a.register()
        await b.register()
        before = local_node.state()["dropped"]
        await a.ws.send(b"\x0b\xff\xff")  # not protobuf
        await a.ws.send("not json")
        error = json.loads(await a.ws.recv())
        await a.send_to(b.addr, b"still works")
        got = await b.receive()
    assert error["Error"] != 0
    assert got.payload == b"still works"
    assert local_node.state()["dropped"] == before + 1


def test_browser_pages_may_call_the_rpc_cross_origin(local_node: LocalNode) -> None:
    origin = {"Origin": "https://127.0.0.1:8443"}
    preflight = httpx.options(
        local_node.url,
        headers={**origin, "Access-Control-Request-Method": "POST"},
        timeout=5,
    )
    call = httpx.post(local_node.url, json={"method": "getwssaddr"}, headers=origin, timeout=5)
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "Content-Type"
    assert call.headers["access-control-allow-origin"] == "*"
    assert "addr" in call.json()["result"]


async def test_second_set_client_moves_the_socket_to_the_new_address(
    local_node: LocalNode,
) -> None:
    async with raw_client(local_node) as client:
        await client.register()
        old_addr = client.addr
        client.addr = f"renamed.{old_addr.rsplit('.', 1)[1]}"
        reply = await client.register()
        clients = local_node.state()["clients"]
    assert reply["Error"] == 0
    assert client.addr in clients
    assert old_addr not in clients
