"""BenchConfig and the command line: flags become one validated config; bad input is named."""

from __future__ import annotations

import pytest

from bench.cli import build_parser, config_from_args
from bench.config import BenchConfig, parse_duration_s, parse_streams, parse_targets
from bench.errors import ConfigError
from bench.runtime import PoissonSchedule, RunSpec


def config(argv: list[str], environ: dict[str, str] | None = None) -> BenchConfig:
    return config_from_args(build_parser().parse_args(argv), environ or {})


def test_flags_and_environment_build_the_config() -> None:
    cfg = config(
        ["--target", "all", "--sweep", "1,2,4", "--duration", "2m", "--slo-ttft-ms", "500"],
        {"FARM_API_KEY": "k", "BENCH_PROXY_URL": "http://farm:8080"},
    )
    assert cfg.targets == ("direct", "proxy", "nkn") and cfg.streams == (1, 2, 4)
    assert (cfg.duration_s, cfg.slo_ttft_ms, cfg.api_key) == (120.0, 500.0, "k")
    assert cfg.proxy_url == "http://farm:8080"
    assert cfg.to_dict()["api_key"] == "***"  # never written to meta.json


def test_url_goes_to_the_chosen_target() -> None:
    assert config(["--target", "direct", "--url", "http://b:1"]).direct_url == "http://b:1"
    assert config(["--url", "http://p:2"]).proxy_url == "http://p:2"


def test_requests_replace_the_default_duration() -> None:
    cfg = config(["--requests", "50"])
    assert (cfg.requests, cfg.duration_s) == (50, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "moon"], "--target"),
        (["--sweep", "1,x"], "--sweep"),
        (["--sweep", "0,2"], "--sweep"),
        (["--duration", "soon"], "--duration"),
        (["--duration", "5s", "--requests", "3"], "exactly one of --duration and --requests"),
        (["--rate", "-1"], "--rate"),
        (["--target", "nkn", "--api", "openai"], "native Ollama API"),
        (["--web", "--sweep", "1,2"], "--web"),
    ],
    ids=["target", "sweep-text", "sweep-zero", "duration", "both-limits", "rate", "nkn-sse", "web"],
)
def test_bad_flags_raise_config_errors_naming_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(argv)


def test_parsers() -> None:
    assert parse_duration_s("500ms") == 0.5 and parse_duration_s("90") == 90.0
    assert parse_streams("9") == (9,) and parse_targets("proxy,direct") == ("proxy", "direct")


def test_config_and_run_spec_round_trip_through_json() -> None:
    cfg = BenchConfig(
        targets=("nkn",), relay_address="a.b", api_key="secret", requests=5, duration_s=None
    )
    assert BenchConfig.from_json(cfg.to_json()) == cfg
    spec = RunSpec("r", "nkn", None, "m", 3, "/tmp/x", cfg)
    assert RunSpec.from_json(spec.to_json()) == spec


def test_poisson_arrivals_are_seeded_with_the_requested_mean_rate() -> None:
    a, b = PoissonSchedule(20.0, 3, 0), PoissonSchedule(20.0, 3, 0)
    times = [a.next_ns() for _ in range(4000)]
    assert times[:50] == [b.next_ns() for _ in range(50)]
    assert times[-1] / 1e9 / 4000 == pytest.approx(1 / 20.0, rel=0.05)
