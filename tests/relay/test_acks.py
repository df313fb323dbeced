"""`AckWatch`: one ACK request per peer at a time; a late or refused ACK reports the peer once."""

from __future__ import annotations

import asyncio

import pytest

from relay.acks import AckWatch

pytestmark = pytest.mark.anyio


async def _settle() -> None:
    # Done callbacks run on the next loop turn.
    for _ in range(3):
        await asyncio.sleep(0)


async def test_one_request_at_a_time_and_a_timely_ack_reports_nothing() -> None:
    silent: list[tuple[str, str]] = []
    watch = AckWatch(60.0, lambda peer, why: silent.append((peer, why)))
    first = watch.request("p")
    assert first is not None and watch.request("p") is None
    assert watch.request("q") is not None  # each peer has its own
    first.set_result(True)
    await _settle()
    assert watch.request("p") is not None and silent == []
    watch.close()


async def test_a_late_ack_reports_the_peer_once() -> None:
    silent: list[tuple[str, str]] = []
    watch = AckWatch(0.05, lambda peer, why: silent.append((peer, why)))
    ack = watch.request("p")
    assert ack is not None
    async with asyncio.timeout(5):
        while not silent:
            await asyncio.sleep(0.01)
    ack.set_result(True)  # too late: changes nothing
    await _settle()
    assert silent == [("p", "no ACK within 0.05 s")]
    assert watch.request("p") is not None  # the next DM asks again
    watch.close()


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("refused", [("p", "not delivered")]), ("lost", [])],
    ids=["network-says-never", "transport-lost-track"],
)
async def test_refused_ack_reports_and_lost_ack_asks_again(
    outcome: str, expected: list[tuple[str, str]]
) -> None:
    silent: list[tuple[str, str]] = []
    watch = AckWatch(60.0, lambda peer, why: silent.append((peer, why)))
    ack = watch.request("p")
    assert ack is not None
    if outcome == "refused":
        ack.set_result(False)
    else:
        ack.cancel()
    await _settle()
    assert silent == expected
    assert watch.request("p") is not None
    watch.close()
