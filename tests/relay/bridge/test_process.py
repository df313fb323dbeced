"""bridge.js itself, through BridgeProcess: bad command lines never kill it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from relay.bridge.process import BridgeProcess
from relay.bridge.protocol import BridgeFailure, Closed, Event, ProbeCommand, ProbeEcho, Ready
from relay.localnode.child import LocalNode
from tests.relay.bridge.support import make_config

pytestmark = pytest.mark.anyio


async def next_event(events: AsyncIterator[Event], kind: type) -> Event:
    async def scan() -> Event:
        async for event in events:
            if isinstance(event, kind):
                return event
        raise AssertionError(f"bridge exited before a {kind.__name__} event")

    return await asyncio.wait_for(scan(), 20)


async def test_bad_command_lines_are_reported_and_the_bridge_keeps_working(
    local_node: LocalNode,
) -> None:
    config = make_config(local_node)
    proc = await BridgeProcess.spawn(config, local_node.rpc_url)
    events = proc.events()
    try:
        ready = await next_event(events, Ready)
        await proc.write(b"this is not json\n")
        bad = await next_event(events, BridgeFailure)
        await proc.write(b'{"cmd":"launch"}\n')
        unknown = await next_event(events, BridgeFailure)
        await proc.write(ProbeCommand("n1").encode())
        echo = await next_event(events, ProbeEcho)
        await proc.write(b'{"cmd":"close"}\n')
        closed = await next_event(events, Closed)
    finally:
        await proc.close(config.close_timeout_s)
    assert isinstance(ready, Ready) and len(ready.addr) == 64
    assert isinstance(bad, BridgeFailure) and "bad command line" in bad.error and not bad.fatal
    assert isinstance(unknown, BridgeFailure) and "unknown command launch" in unknown.error
    assert echo == ProbeEcho("n1")
    assert closed == Closed()
    assert proc.returncode == 0
