"""`AckWatch`: a peer is gone once it answered none of `PROBES` asks over the timeout."""

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


async def _silent(silent: list[tuple[str, str]]) -> None:
    async with asyncio.timeout(5):
        while not silent:
            await asyncio.sleep(0.005)


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
    assert watch.request("p") is None  # answered, and still asked too lately
    assert (await _ask(watch)) is not None and silent == []
    watch.close()


async def test_a_peer_that_answers_none_of_probes_asks_over_the_timeout_is_reported_once() -> None:
    watch, silent = _watch()
    asked = [await _ask(watch) for _ in range(PROBES)]
    await _silent(silent)
    assert silent == [("p", f"no ACK within {TIMEOUT_S:g} s")]
    asked[0].set_result(True)  # after the report: changes nothing
    await _settle()
    assert len(silent) == 1
    assert watch.request("p") is not None  # the next DM asks again
    watch.close()


async def test_a_quiet_link_is_reported_only_once_probes_asks_went_unanswered() -> None:
    watch, silent = _watch()
    await _ask(watch)
    await asyncio.sleep(TIMEOUT_S * 1.5)  # past the timeout, with one ask: loss or absence?
    assert silent == []
    for _ in range(PROBES - 1):
        await _ask(watch)
    await _silent(silent)
    assert silent == [("p", f"no ACK within {TIMEOUT_S:g} s")]
    watch.close()


@pytest.mark.parametrize("proof", ["late-ack", "dm-from-peer"])
async def test_a_late_ack_or_a_dm_from_the_peer_starts_the_count_over(proof: str) -> None:
    watch, silent = _watch()
    first = await _ask(watch)
    for _ in range(PROBES - 2):
        await _ask(watch)
    if proof == "late-ack":
        first.set_result(True)
        await _settle()
    else:
        watch.heard("p")
    for _ in range(PROBES - 1):
        await _ask(watch)
    await asyncio.sleep(TIMEOUT_S / PROBES)
    assert silent == []
    watch.close()


@pytest.mark.parametrize("outcome", ["refused", "lost-track"])
async def test_refused_or_lost_asks_are_no_answer(outcome: str) -> None:
    watch, silent = _watch()
    for _ in range(PROBES):
        ack = await _ask(watch)
        if outcome == "refused":
            ack.set_result(False)
        else:
            ack.cancel()
    await _silent(silent)
    assert silent == [("p", f"no ACK within {TIMEOUT_S:g} s")]
    watch.close()


async def test_a_dm_the_transport_refused_reports_at_once() -> None:
    watch, silent = _watch()
    ack = watch.request("p")
    assert ack is not None
    watch.failed("p", ack)
    assert silent == [("p", "send failed")] and ack.cancelled()
    assert watch.request("p") is not None
    watch.close()
