"""The bridge restart back-off doubles per start that never connected, up to its cap."""

from __future__ import annotations

import pytest

from relay.bridge.supervisor import restart_delay_s


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (5000, 30.0)],
    ids=["after-connected", "first-failure", "second", "third", "sixth", "capped", "hours-down"],
)
def test_restart_delay(failures: int, delay: float) -> None:
    assert restart_delay_s(failures, 0.5, 30.0) == delay
