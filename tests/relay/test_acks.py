"""`AckWatch`: a peer is gone after `PROBES` unanswered asks in a row, never after one loss."""

from __future__ import annotations

import asyncio

import pytest

from relay.acks import PROBES, AckWatch
from relay.transport import Acked

pytestmark = pytest.mark.anyio
TIMEOUT_S = 0.15


async def _settle() -> None:
    # Done callbacks run on the next loop turn.
    for _ in range(3):
        await asyncio.sleep(0)


async def _ask(watch: AckWatch, peer: str = "p") -> Acked:
    """The next ask the watch allows (it spaces them `TIMEOUT_S / PROBES` apart)."""
    async with asyncio.timeout(5):
        while (ack := watch.request(peer)) is None:
            await asyncio.sleep(0.005)
    return ack


async def _expired(ack: Acked) -> None:
    """Wait out `ack`'s deadline (its own share of the timeout)."""
    await asyncio.sleep(TIMEOUT_S / PROBES + 0.02)
    assert not ack.done()


def _watch() -> tuple[AckWatch, list[tuple[str, str]]]:
    silent: list[tuple[str, str]] = []
    return AckWatch(TIMEOUT_S, lambda peer, why: silent.append((peer, why))), silent


async def test_asks_are_spaced_and_a_timely_ack_reports_nothing() -> None:
    watch, silent = _watch()
    first = watch.request("p")
    assert first is not None and watch.request("p") is None
    assert watch.request("q") is not None  # each peer has its own
    first.set_result(True)
    await _settle()
    assert watch.request("p") is not None and silent == []
    watch.close()


async def test_probes_unanswered_asks_in_a_row_report_the_peer_once() -> None:
    watch, silent = _watch()
    for _ in range(PROBES - 1):
        await _expired(await _ask(watch))
    assert silent == []  # one lost ACK, or two, is NKN losing messages
    late = await _ask(watch)
    await _expired(late)
    assert silent == [("p", f"no ACK within {TIMEOUT_S:g} s")]
    late.set_result(True)  # after the report: changes nothing
    await _settle()
    assert silent == [("p", f"no ACK within {TIMEOUT_S:g} s")]
    assert watch.request("p") is not None  # the next DM asks again
    watch.close()


@pytest.mark.parametrize("proof", ["late-ack", "dm-from-peer"])
async def test_a_late_ack_or_a_dm_from_the_peer_starts_the_count_over(proof: str) -> None:
    watch, silent = _watch()
    first = await _ask(watch)
    await _expired(first)
    await _expired(await _ask(watch))
    if proof == "late-ack":
        first.set_result(True)
        await _settle()
    else:
        watch.heard("p")
    for _ in range(PROBES - 1):
        await _expired(await _ask(watch))
    assert silent == []
    watch.close()


async def test_refused_asks_count_as_misses_and_lost_ones_as_nothing() -> None:
    watch, silent = _watch()
    for _ in range(PROBES - 1):
        (await _ask(watch)).set_result(False)  # the network says it never will
        await _settle()
    (await _ask(watch)).cancel()  # the transport lost track of it: no answer, no miss
    await _settle()
    assert silent == []
    (await _ask(watch)).set_result(False)
    await _settle()
    assert silent == [("p", "not delivered")]
    watch.close()


async def test_a_dm_the_transport_refused_reports_at_once() -> None:
    watch, silent = _watch()
    ack = watch.request("p")
    assert ack is not None
    watch.failed("p", ack)
    assert silent == [("p", "send failed")] and ack.cancelled()
    assert watch.request("p") is not None
    watch.close()
