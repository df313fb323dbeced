"""The token bucket behind /nkn-rpc's per-client rate limit, on a clock the test sets."""

from __future__ import annotations

import pytest

from farm.webdemo.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_burst_passes_then_calls_wait_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after_s("a") == pytest.approx(0.5)
    clock.now_s += 0.5
    assert limiter.allow("a") is True
    assert limiter.allow("a") is False


def test_each_address_has_its_own_bucket_and_refill_stops_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b") is True
    clock.now_s += 3600
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_buckets_are_kept_for_a_bounded_number_of_addresses() -> None:
    limiter = RateLimiter(rate=0.001, burst=1, clock=Clock(), max_clients=2)
    assert limiter.allow("a") and limiter.allow("b")
    assert limiter.allow("c")  # "a", least recently seen, is forgotten
    assert limiter.allow("a") is True
    assert limiter.allow("c") is False


def test_a_rate_that_can_never_admit_is_refused() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate=0.0, burst=1)
