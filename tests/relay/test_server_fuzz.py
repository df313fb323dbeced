"""Fuzzing the running relay: no sequence of DMs, however malformed, stops it from serving."""

from __future__ import annotations

import asyncio
import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.relay.harness import config_for, running_relay
from tests.relay.strategies import frames_like


def _ok(request: httpx.Request) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return httpx.Response(200, content=b'{"done":true}\n', headers=headers)


async def _feed(payloads: list[str]) -> None:
    async with running_relay(config_for("http://upstream", keepalive_s=0.05), handler=_ok) as h:
        for payload in payloads:
            await h.send_raw(payload)
        pong, _ = await h.client.ping(timeout_s=5)
        assert pong.addr == h.relay.address
        await asyncio.sleep(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(frames_like.map(json.dumps) | st.text(max_size=50), max_size=15))
def test_relay_answers_ping_after_any_burst_of_dms(payloads: list[str]) -> None:
    asyncio.run(_feed(payloads))
