"""Helpers for the NKN bridge tests: configs on the local node, running transports, receiving."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from relay.bridge import BridgeConfig, NknTransport
from relay.localnode.child import LocalNode
from relay.transport import Incoming, Transport


def make_config(node: LocalNode, **overrides: object) -> BridgeConfig:
    """A fresh identity on the local node, with fast timings for tests."""
    fields: dict[str, object] = {
        "seed_hex": os.urandom(32).hex(),
        "rpc_server_addrs": (node.rpc_url,),
        "ready_timeout_s": 20.0,
        "restart_backoff_min_s": 0.1,
        "reconnect_interval_min_ms": 200,
    }
    fields.update(overrides)
    return BridgeConfig(**fields)  # type: ignore[arg-type]


@asynccontextmanager
async def running(config: BridgeConfig) -> AsyncIterator[NknTransport]:
    transport = NknTransport(config)
    await transport.start()
    try:
        yield transport
    finally:
        await transport.close()


async def receive(transport: Transport, count: int, timeout: float = 15.0) -> list[Incoming]:
    """Collect `count` DMs, failing at the deadline instead of hanging."""
    got: list[Incoming] = []

    async def collect() -> None:
        async for item in transport.incoming():
            got.append(item)
            if len(got) == count:
                return

    await asyncio.wait_for(collect(), timeout)
    return got
