"""`Outlet`: a `sure` frame (the seed path's end summary) goes again until it is delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from relay.acks import PROBES
from relay.frames import Keepalive, ResponseEnd
from relay.outlet import SURE_TRIES, Outlet
from relay.transport import Acked, Incoming, Sending
from tests.relay.harness import config_for

pytestmark = pytest.mark.anyio
ACK_TIMEOUT_S = 0.3
END = ResponseEnd("r1", True, 10, 3, 3, False, True, False, None, 5)


class LossyLink:
    """A transport whose DMs' delivery ACKs say what `delivered` says, try by try."""

    def __init__(self, delivered: list[bool | None]) -> None:
        self.delivered = delivered
        self.sent: list[str] = []

    @property
    def address(self) -> str:
        return "relay"

    async def start(self) -> str:
        return "relay"

    async def send(self, dest: str, payload: str, *, ack: Acked | None = None) -> Sending | None:
        self.sent.append(payload)
        outcome = self.delivered.pop(0) if self.delivered else None
        if ack is not None and outcome is not None:
            ack.set_result(outcome)  # None: the DM (or its ACK) was lost, no answer ever
        return None

    async def incoming(self) -> AsyncIterator[Incoming]:
        return
        yield  # pragma: no cover

    async def close(self) -> None:
        pass


async def _sends(link: LossyLink, outlet: Outlet, expected: int) -> None:
    # Every resend waits for its ACK at most ACK_TIMEOUT_S / PROBES: all are over by then.
    async with asyncio.timeout(ACK_TIMEOUT_S * SURE_TRIES):
        while outlet._resending:
            await asyncio.sleep(0.01)
    assert len(link.sent) == expected, link.sent


@pytest.mark.parametrize(
    ("delivered", "sends"),
    [([True], 1), ([None, True], 2), ([False, True], 2), ([None] * 9, SURE_TRIES)],
    ids=["delivered", "lost-once", "refused-once", "never"],
)
async def test_an_end_goes_again_until_its_ack_comes_at_most_sure_tries_times(
    delivered: list[bool | None], sends: int
) -> None:
    link = LossyLink(delivered)
    outlet = Outlet(config_for("http://unused", ack_timeout_s=ACK_TIMEOUT_S), link, print)
    await outlet.link("peer").send(END, sure=True)
    await _sends(link, outlet, sends)
    assert len(set(link.sent)) == 1  # the same end each time: a peer keeps the first
    outlet.close()


async def test_other_frames_go_once_whatever_happens_to_them() -> None:
    link = LossyLink([None] * 9)
    outlet = Outlet(config_for("http://unused", ack_timeout_s=ACK_TIMEOUT_S), link, print)
    await outlet.link("peer").send(Keepalive("r1", 1))
    await asyncio.sleep(ACK_TIMEOUT_S / PROBES * 2)
    assert len(link.sent) == 1
    outlet.close()
