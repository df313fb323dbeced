"""`Backlog`: unsent bytes per peer and in all, room under both caps, wake-ups as DMs leave."""

from __future__ import annotations

import asyncio

import pytest

from relay.backlog import Backlog

pytestmark = pytest.mark.anyio


async def test_room_is_checked_against_the_peer_and_the_total_cap() -> None:
    backlog = Backlog(peer_cap_b=100, total_cap_b=150)
    loop = asyncio.get_running_loop()
    a, b = loop.create_future(), loop.create_future()
    backlog.track("p", 80, a)
    assert backlog.has_room("p", 20) and not backlog.has_room("p", 21)
    backlog.track("q", 60, b)
    assert backlog.unsent_b() == 140 and backlog.unsent_b("q") == 60
    assert not backlog.has_room("q", 11)  # q is under its own cap, but the total is not
    assert backlog.has_room("idle", 10) and not backlog.has_room("idle", 11)
    a.set_result(None)
    await asyncio.sleep(0)
    assert backlog.unsent_b("p") == 0 and backlog.unsent_b() == 60
    assert backlog.has_room("p", 90)


async def test_a_dm_that_already_left_is_not_counted_and_any_dm_fits_an_idle_peer() -> None:
    backlog = Backlog(peer_cap_b=100, total_cap_b=100)
    backlog.track("p", 50, None)
    assert backlog.unsent_b() == 0
    assert backlog.has_room("p", 10_000)  # nothing unsent anywhere: a big DM may still go


async def test_waiters_wake_when_a_dm_leaves() -> None:
    backlog = Backlog(peer_cap_b=100, total_cap_b=100)
    sending = asyncio.get_running_loop().create_future()
    backlog.track("p", 100, sending)
    waiter = backlog.waiter()
    await asyncio.sleep(0)
    assert not waiter.done()
    sending.set_result(None)
    await asyncio.wait_for(waiter, 1)
    assert backlog.has_room("p", 100)
