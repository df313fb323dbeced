"""The transport on the real NKN network (opt-in: `--integration`, needs internet)."""

from __future__ import annotations

import asyncio
import os

import pytest

from relay.bridge import BridgeConfig, NknTransport
from relay.transport import Incoming

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_two_identities_exchange_a_dm_over_the_real_network() -> None:
    # No rpc_server_addrs: nkn-sdk joins through its default mainnet seed node.
    configs = [BridgeConfig(seed_hex=os.urandom(32).hex(), ready_timeout_s=60) for _ in range(2)]
    a, b = NknTransport(configs[0]), NknTransport(configs[1])
    await asyncio.gather(a.start(), b.start())
    try:
        # Each side reports ready on its first subclient; until the others join, a copy can
        # miss, so send again (the same frame) until one arrives.
        for _ in range(12):
            await a.send(b.address, '{"event":"relay.ping"}')
            try:
                # A fresh iterator each time: a timeout cancels (and so ends) the previous one.
                got = await asyncio.wait_for(anext(aiter(b.incoming())), 5)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("no DM arrived over the real NKN network within 60 s")
    finally:
        await asyncio.gather(a.close(), b.close())
    assert got == Incoming(a.address, '{"event":"relay.ping"}')
