"""The proxy's fair queue: slots shared across keys, limits answered with 429 at once."""

from __future__ import annotations

import asyncio

import pytest

from farm.keys.records import Limits
from farm.proxy.fairqueue import FairQueue, OverQuota, Ticket

pytestmark = pytest.mark.anyio
NONE = Limits()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_free_slots_admit_at_once_and_the_rest_wait() -> None:
    q = FairQueue(lambda: 2)
    a = await q.admit("a", NONE)
    await q.admit("a", NONE)
    waiting = asyncio.ensure_future(q.admit("b", NONE))
    await _settle()
    assert not waiting.done() and q.queued("b") == 1
    q.release(a)
    assert (await asyncio.wait_for(waiting, 1)) == Ticket("b")


async def test_a_heavy_key_does_not_starve_a_light_one() -> None:
    """B queues 30, then A asks once: A is admitted after at most one of B's."""
    q = FairQueue(lambda: 4)
    held = [await q.admit("b", NONE) for _ in range(4)]
    order: list[str] = []

    async def one(name: str) -> None:
        t = await q.admit(name, NONE)
        order.append(name)
        q.release(t)

    heavy = [asyncio.ensure_future(one("b")) for _ in range(30)]
    await _settle()
    light = asyncio.ensure_future(one("a"))
    await _settle()
    for t in held:
        q.release(t)
    await asyncio.wait_for(asyncio.gather(*heavy, light), 2)
    assert order.index("a") <= 1


async def test_weights_share_contended_slots() -> None:
    q = FairQueue(lambda: 1)
    first = await q.admit("x", NONE)
    order: list[str] = []

    async def one(name: str, limits: Limits) -> None:
        t = await q.admit(name, limits)
        order.append(name)
        await asyncio.sleep(0)
        q.release(t)

    tasks = [asyncio.ensure_future(one("heavy", Limits(weight=3.0))) for _ in range(9)]
    tasks += [asyncio.ensure_future(one("light", Limits(weight=1.0))) for _ in range(3)]
    await _settle()
    q.release(first)
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert order[:8].count("heavy") == 6 and order[:8].count("light") == 2


async def test_max_streams_holds_a_key_back_but_not_others() -> None:
    q = FairQueue(lambda: 4)
    capped = Limits(max_streams=1)
    await q.admit("a", capped)
    second = asyncio.ensure_future(q.admit("a", capped))
    await _settle()
    assert not second.done()
    assert (await asyncio.wait_for(q.admit("b", NONE), 1)) == Ticket("b")
    second.cancel()


async def test_max_queued_is_answered_at_once() -> None:
    q = FairQueue(lambda: 1)
    await q.admit("a", NONE)
    limits = Limits(max_queued=1)
    waiting = asyncio.ensure_future(q.admit("a", limits))
    await _settle()
    with pytest.raises(OverQuota, match="--max-queued 1") as err:
        await q.admit("a", limits)
    assert err.value.retry_after_s >= 1
    waiting.cancel()


async def test_a_waiter_that_leaves_is_gone_at_once() -> None:
    q = FairQueue(lambda: 1)
    t = await q.admit("a", NONE)
    leaving = asyncio.ensure_future(q.admit("b", NONE))
    staying = asyncio.ensure_future(q.admit("c", NONE))
    await _settle()
    leaving.cancel()
    await _settle()
    assert q.queued("b") == 0 and q.queued() == 1
    q.release(t)
    assert (await asyncio.wait_for(staying, 1)) == Ticket("c")
    assert q.in_use == 1


async def test_tokens_per_minute_refuse_until_the_window_frees() -> None:
    clock = Clock()
    q = FairQueue(lambda: 4, clock)
    limits = Limits(tokens_per_min=100)
    q.release(await q.admit("a", limits), output_tokens=60)
    clock.now = 10.0
    q.release(await q.admit("a", limits), output_tokens=60)
    with pytest.raises(OverQuota, match="120 output tokens") as err:
        await q.admit("a", limits)
    assert err.value.retry_after_s == 50  # the first 60 tokens leave the window at t=60
    clock.now = 60.5
    q.release(await q.admit("a", limits))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_principal_between_turns_keeps_one_slot_for_a_moment() -> None:
    """A (one conversation) just finished; B's queue may not take A's slot until the hold ends."""
    clock = Clock()
    q = FairQueue(lambda: 2, clock, idle_reserve_s=2.0)
    a = await q.admit("a", NONE)
    b = await q.admit("b", NONE)
    q.release(a)
    more_b = asyncio.ensure_future(q.admit("b", NONE))
    await _settle()
    assert not more_b.done()  # the free slot is A's for now
    assert (await asyncio.wait_for(q.admit("a", NONE), 1)) == Ticket("a")
    q.release(b)  # B's own slot frees: its waiter takes it
    assert (await asyncio.wait_for(more_b, 1)) == Ticket("b")


async def test_the_hold_ends_and_the_waiter_gets_the_slot() -> None:
    q = FairQueue(lambda: 2, idle_reserve_s=0.05)
    a = await q.admit("a", NONE)
    await q.admit("b", NONE)
    q.release(a)
    # Nobody releases anything: the hold's own timer admits B.
    assert (await asyncio.wait_for(q.admit("b", NONE), 2)) == Ticket("b")
