"""The one quantile function: numpy's linear interpolation, missing values dropped, NaN when
empty."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.quantiles import percentiles, quantile, quantiles


def test_quantiles_use_linear_interpolation_and_drop_missing() -> None:
    q = quantiles([1.0, 2.0, 3.0, 4.0, float("nan"), None])
    assert (q.n, q.p50, q.mean, q.max) == (4, 2.5, 2.5, 4.0)
    assert q.p90 == pytest.approx(3.7)


@pytest.mark.parametrize("values", [[], [None], [float("nan"), float("inf")]], ids=str)
def test_quantiles_of_nothing_are_nan(values: list[float | None]) -> None:
    q = quantiles(values)
    assert q.n == 0 and math.isnan(q.p50) and math.isnan(q.mean)
    assert math.isnan(quantile(values, 0.5))
    assert all(math.isnan(v) for v in percentiles(values, (0.5, 0.99)))


def test_one_value_is_every_quantile() -> None:
    assert quantile([7.0], 0.01) == quantile([7.0], 0.99) == 7.0
    assert quantiles([7.0]).std == 0.0


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=50),
    st.integers(1, 99),
)
def test_agrees_with_statistics_inclusive_method(values: list[float], percent: int) -> None:
    # The copies this replaced used statistics.quantiles(method="inclusive"): the same numbers.
    expected = statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
    assert quantile(values, percent / 100) == pytest.approx(expected, abs=1e-6)
