"""The run spec a locust process reads, and its seeded open-loop arrivals."""

from __future__ import annotations

import json

import pytest

from bench.errors import ConfigError
from bench.runtime import PoissonSchedule, RunSpec
from bench.settings import BenchSettings
from farm.settings import child_env


def test_run_spec_round_trips_with_the_key_kept_out_of_the_file() -> None:
    cfg = BenchSettings(target=("nkn",), relay_address="a.b", api_key="secret", requests=5)
    spec = RunSpec("r", "nkn", None, "m", 3, "/tmp/x", cfg)
    text = spec.to_json()
    assert "secret" not in text
    assert RunSpec.from_json(text, child_env(cfg)) == spec
    assert RunSpec.from_json(text, {}).config.api_key is None


def test_a_malformed_run_spec_names_the_setting() -> None:
    doc = json.loads(RunSpec("r", "proxy", None, "m", 1, "/tmp/x", BenchSettings()).to_json())
    doc["config"] = ["--streams", "0"]
    with pytest.raises(ConfigError, match="run spec is malformed: --streams '0'"):
        RunSpec.from_json(json.dumps(doc), {})


def test_poisson_arrivals_are_seeded_with_the_requested_mean_rate() -> None:
    a, b = PoissonSchedule(20.0, 3, 0), PoissonSchedule(20.0, 3, 0)
    times = [a.next_ns() for _ in range(4000)]
    assert times[:50] == [b.next_ns() for _ in range(50)]
    assert times[-1] / 1e9 / 4000 == pytest.approx(1 / 20.0, rel=0.05)
