"""The outbox keeps DMs, in order, until a bridge confirms them; bounded."""

from __future__ import annotations

import asyncio

import pytest

from relay.bridge import QueueFullError
from relay.bridge.outbox import Outbox

pytestmark = pytest.mark.anyio


async def test_full_outbox_refuses_counting_in_flight() -> None:
    outbox = Outbox(limit=2)
    outbox.put("d", "one")
    await outbox.take()  # in flight still counts: it is not confirmed yet
    outbox.put("d", "two")
    with pytest.raises(QueueFullError, match="2 DMs already wait"):
        outbox.put("d", "three")


async def test_outbox_is_bounded_by_bytes_not_only_by_count() -> None:
    # A stalled link must not make it hold `limit` DMs of 3.5 MB each.
    outbox = Outbox(limit=1000, limit_b=10)
    outbox.put("d", "123456")
    with pytest.raises(QueueFullError, match="6 bytes of DMs already wait"):
        outbox.put("d", "12345")
    [item] = await outbox.take_many(8)
    outbox.confirm(item.id)
    assert outbox.size_b == 0
    outbox.put("d", "x" * 50)  # an empty outbox takes any DM NKN would
    assert outbox.size_b == 50


async def test_given_up_dm_frees_its_bytes_and_fails_its_ack() -> None:
    outbox = Outbox(limit=10, limit_b=100)
    ack = asyncio.get_running_loop().create_future()
    sending = outbox.put("d", "hello", ack=ack)
    item = await outbox.take()
    failed = outbox.failed(item.id)
    assert failed is item and outbox.size_b == 5  # still held: it may be retried
    outbox.give_up(item)
    assert sending.done() and ack.result() is False and outbox.size_b == 0


async def test_dead_bridge_requeues_in_flight_first_in_order() -> None:
    outbox = Outbox(limit=10)
    for text in ("a", "b", "c", "d"):
        outbox.put("dest", text)
    a, b = await outbox.take(), await outbox.take()
    outbox.confirm(a.id)
    await outbox.take()  # c in flight
    outbox.requeue_inflight()
    order = [(await outbox.take()).payload for _ in range(3)]
    assert order == ["b", "c", "d"]
    assert b.attempts == 0


async def test_failed_dm_counts_tries_and_goes_back_to_the_front() -> None:
    outbox = Outbox(limit=10)
    outbox.put("dest", "x")
    outbox.put("dest", "y")
    x = await outbox.take()
    failed = outbox.failed(x.id)
    assert failed is x and x.attempts == 1
    outbox.retry_first(x)
    assert (await outbox.take()).payload == "x"


async def test_drained_only_after_every_dm_is_confirmed() -> None:
    outbox = Outbox(limit=10)
    outbox.put("dest", "x")
    waiter = asyncio.create_task(outbox.wait_drained())
    item = await outbox.take()
    await asyncio.sleep(0)
    assert not waiter.done()
    outbox.confirm(item.id)
    await asyncio.wait_for(waiter, 1)
    assert len(outbox) == 0


async def test_take_waits_for_a_put() -> None:
    outbox = Outbox(limit=10)
    taker = asyncio.create_task(outbox.take())
    await asyncio.sleep(0)
    assert not taker.done()
    outbox.put("dest", "late")
    assert (await asyncio.wait_for(taker, 1)).payload == "late"


async def test_sending_future_completes_on_confirm_and_not_before() -> None:
    outbox = Outbox(limit=10)
    sending = outbox.put("d", "x")
    [item] = await outbox.take_many(8)
    assert not sending.done()
    outbox.confirm(item.id)
    assert sending.done()


async def test_take_many_takes_what_waits_oldest_first_up_to_the_limit() -> None:
    outbox = Outbox(limit=10)
    for text in "abc":
        outbox.put("d", text)
    assert [i.payload for i in await outbox.take_many(2)] == ["a", "b"]
    assert [i.payload for i in await outbox.take_many(2)] == ["c"]


async def test_abandon_settles_waiting_and_in_flight() -> None:
    outbox = Outbox(limit=10)
    flying, waiting = outbox.put("d", "a"), outbox.put("d", "b")
    await outbox.take()
    outbox.abandon()
    assert flying.done() and waiting.done()
