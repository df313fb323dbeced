"""Go duration syntax and Ollama's `keep_alive` rules."""

from __future__ import annotations

import math

import pytest

from farm.sim.durations import keep_alive_from_env, keep_alive_from_json, parse_go_duration
from farm.sim.errors import BadRequest


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400.0), ("250ms", 0.25), ("-1m", -60.0), ("0", 0.0), ("1.5s", 1.5)],
    ids=["hours-minutes", "millis", "negative", "zero", "fraction"],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_keep_alive_rules() -> None:
    assert keep_alive_from_json(None) is None
    assert keep_alive_from_json(30) == 30.0
    assert math.isinf(keep_alive_from_json(-5) or 0)
    assert math.isinf(keep_alive_from_json("-1m") or 0)
    with pytest.raises(BadRequest, match='time: missing unit in duration "3600"'):
        keep_alive_from_json("3600")
    with pytest.raises(BadRequest, match='unknown unit "x"'):
        keep_alive_from_json("5x")
    assert keep_alive_from_env("3600") == 3600.0  # the variable accepts bare seconds
