"""Configuration from OLLAMA_* variables and flags, and Go duration parsing."""

from __future__ import annotations

import math

import pytest

from farm.sim.__main__ import build_config
from farm.sim.config import SimConfig, parse_ollama_host
from farm.sim.durations import keep_alive_from_env, keep_alive_from_json, parse_go_duration
from farm.sim.errors import BadRequest, ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0", ("0.0.0.0", 11434)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (":8123", ("127.0.0.1", 8123)),
        ("http://example.local", ("example.local", 80)),
        ("https://example.local", ("example.local", 443)),
        ("http://[::1]:7000/path", ("::1", 7000)),
    ],
    ids=["bare-host", "host-port", "port-only", "http-no-port", "https-no-port", "ipv6"],
)
def test_ollama_host_is_parsed_like_ollama(value: str, expected: tuple[str, int]) -> None:
    assert parse_ollama_host(value) == expected


def test_from_env_reads_ollama_variables() -> None:
    config = SimConfig.from_env(
        {
            "OLLAMA_HOST": "0.0.0.0:1234",
            "OLLAMA_NUM_PARALLEL": "4",
            "OLLAMA_MAX_QUEUE": "7",
            "OLLAMA_KEEP_ALIVE": "-1",
            "OLLAMA_MAX_LOADED_MODELS": "0",
            "OLLAMA_CONTEXT_LENGTH": "8192",
            "OLLAMA_ORIGINS": "https://a.example, app://x",
        }
    )
    assert (config.host, config.port, config.num_parallel, config.max_queue) == (
        "0.0.0.0",
        1234,
        4,
        7,
    )
    assert math.isinf(config.keep_alive_s) and config.max_loaded_models == 3
    assert config.context_length == 8192
    assert config.origins == ("https://a.example", "app://x")


def test_bad_variable_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="OLLAMA_NUM_PARALLEL"):
        SimConfig.from_env({"OLLAMA_NUM_PARALLEL": "many"})
    with pytest.raises(ConfigError, match="jitter"):
        SimConfig(jitter=1.5)


def test_flags_override_environment() -> None:
    config = build_config(
        ["--num-parallel", "3", "--keep-alive", "10m", "--empty-store", "--origins", "x://y"],
        {"OLLAMA_NUM_PARALLEL": "8", "OLLAMA_MAX_QUEUE": "9"},
    )
    assert (config.num_parallel, config.max_queue, config.keep_alive_s) == (3, 9, 600.0)
    assert config.empty_store and config.origins == ("x://y",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400.0), ("250ms", 0.25), ("-1m", -60.0), ("0", 0.0), ("1.5s", 1.5)],
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
