"""py-spy's collapsed stacks become CPU ms per request by frame."""

from __future__ import annotations

import pytest

from bench.proxy_profile import NATIVE, hot_frames, parse_collapsed

LOOP = "main (m.py:1);Runner.run (asyncio/runners.py:118)"
RAW = [
    f"{LOOP} 600",
    f"{LOOP};Forwarder._relay (farm/proxy/forward.py:230);send (uvicorn/h.py:40) 300",
    f"{LOOP};Forwarder._relay (farm/proxy/forward.py:241) 100",
    'process 12:"python -m granian" 50',
    "not a stack line",
]


def test_collapsed_lines_are_parsed_into_stacks_with_counts() -> None:
    stacks = parse_collapsed(RAW)
    assert sum(stacks.values()) == 1050
    assert stacks[("main (m.py:1)", "Runner.run (asyncio/runners.py:118)")] == 600


def test_hot_frames_are_shares_with_lines_merged_and_wrappers_dropped() -> None:
    frames = {f.frame: f for f in hot_frames(parse_collapsed(RAW))}
    assert frames[NATIVE].self_share == pytest.approx(50 / 1050)  # no Python frame
    loop = frames["Runner.run (asyncio/runners.py)"]
    assert (loop.self_share, loop.total_share) == pytest.approx((600 / 1050, 1000 / 1050))
    relay = frames["Forwarder._relay (farm/proxy/forward.py)"]  # two lines, one function
    assert (relay.self_share, relay.total_share) == pytest.approx((100 / 1050, 400 / 1050))
    assert frames["send (uvicorn/h.py)"].self_share == pytest.approx(300 / 1050)
    assert "main (m.py)" not in frames  # a wrapper above the loop: its total says nothing new
