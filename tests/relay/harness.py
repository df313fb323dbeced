"""Test harness: a relay and a peer client on an in-memory network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from relay.client import RelayClient
from relay.memory import MemoryNetwork, MemoryTransport
from relay.server import RelayServer
from relay.settings import RelaySettings


@dataclass
class Harness:
    """A running relay, a started peer transport and a client for it."""

    network: MemoryNetwork
    relay: MemoryTransport
    peer: MemoryTransport
    server: RelayServer
    client: RelayClient

    def frames_to_peer(self) -> list[dict[str, Any]]:
        """Every DM the relay sent to the peer, decoded as plain JSON."""
        return [
            json.loads(dm.payload)
            for dm in self.network.sent_by(self.relay.address)
            if dm.dest == self.peer.address
        ]

    async def send_raw(self, payload: str) -> None:
        """Send an arbitrary DM from the peer to the relay."""
        await self.peer.send(self.relay.address, payload)

    async def next_raw(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next DM the peer receives, bypassing the client (do not use with the client)."""
        messages = self.peer.incoming()
        message = await asyncio.wait_for(anext(messages), timeout)
        return json.loads(message.payload)


@asynccontextmanager
async def running_relay(
    config: RelaySettings | None = None,
    *,
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    network: MemoryNetwork | None = None,
    with_client: bool = True,
    **client_options: Any,
) -> AsyncIterator[Harness]:
    """Run a relay on a memory network; upstream via `handler` (MockTransport) or real HTTP."""
    config = config or RelaySettings()
    network = network or MemoryNetwork()
    relay = network.transport("relay")
    peer = network.transport("peer")
    await relay.start()
    await peer.start()
    clients = None
    if handler is not None:
        mock = httpx.MockTransport(handler)
        clients = {verify: httpx.AsyncClient(transport=mock) for verify in (True, False)}
    server = RelayServer(config, relay, clients=clients)
    task = asyncio.create_task(server.serve())
    # These tests pin the seed API; the fast path's own tests ask for it (`fast=True`).
    client_options.setdefault("fast", False)
    client = RelayClient(peer, relay.address, **client_options)
    try:
        if with_client:
            await client.__aenter__()
        yield Harness(network, relay, peer, server, client)
    finally:
        await client.aclose()
        task.cancel()
        await asyncio.wait({task})
        if clients is not None:
            for http in clients.values():
                await http.aclose()
        await relay.close()
        await peer.close()


def config_for(url: str, **changes: Any) -> RelaySettings:
    """The default relay settings with `ollama` pointing at `url`, and `changes` unchecked
    (so a test may set a combination the settings would refuse)."""
    return RelaySettings(targets={"ollama": url}).model_copy(update=changes)
