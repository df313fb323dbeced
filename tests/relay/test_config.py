"""RelayConfig: the seed's `.env` on first run, defaults, and one clear error per bad key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from relay.config import RelayConfig, ensure_env_file, load
from relay.errors import ConfigError


def test_first_run_creates_a_private_env_with_a_fresh_seed(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    config = load(env, environ={})
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = dotenv_values(env)
    assert len(values["NKN_SEED_HEX"] or "") == 64 and config.seed_hex == values["NKN_SEED_HEX"]
    seed_keys = {
        "NKN_SEED_HEX", "NKN_NUM_SUBCLIENTS", "RELAY_WORKERS", "RELAY_MAX_BODY_B",
        "RELAY_VERIFY_DEFAULT", "RELAY_TARGETS", "NKN_BRIDGE_SEED_WS",
    }  # fmt: skip
    assert seed_keys <= set(values)
    assert config.targets == {"ollama": "http://127.0.0.1:8080"}
    assert (config.workers, config.max_body_b, config.num_subclients) == (4, 2_097_152, 2)
    assert config.verify_default and config.allow_urls == () and config.allowed_peers == ()


def test_each_env_gets_its_own_seed_and_an_existing_one_is_kept(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    seed_a = load(first, environ={}).seed_hex
    assert load(second, environ={}).seed_hex != seed_a
    assert not ensure_env_file(first)
    assert load(first, environ={}).seed_hex == seed_a


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = load(tmp_path / ".env", environ={"RELAY_WORKERS": "9"})
    assert config.workers == 9


def test_optional_keys_are_read() -> None:
    config = RelayConfig.from_env(
        {
            "RELAY_TARGETS": '{"ollama":"http://10.0.0.2:8080","sim":"http://127.0.0.1:11434"}',
            "RELAY_ALLOW_URLS": "https://api.example.com/v1, https://b.example/",
            "RELAY_ALLOWED_PEERS": "AB" * 32,
            "NKN_BRIDGE_SEED_WS": "wss://seed1:30003,ws://seed2:30002",
            "RELAY_BATCH_LINES": "1",
            "RELAY_BATCH_MS": "0",
            "RELAY_VERIFY_DEFAULT": "0",
        }
    )
    assert set(config.targets) == {"ollama", "sim"}
    assert config.allow_urls == ("https://api.example.com/v1", "https://b.example/")
    assert config.allowed_peers == ("ab" * 32,)
    assert config.bridge_seed_ws == ("wss://seed1:30003", "ws://seed2:30002")
    assert (config.batch_lines, config.batch_ms, config.verify_default) == (1, 0, False)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NKN_SEED_HEX", "xyz"),
        ("NKN_SEED_HEX", "ab" * 31),
        ("RELAY_WORKERS", "four"),
        ("RELAY_WORKERS", "0"),
        ("RELAY_MAX_BODY_B", "-1"),
        ("RELAY_MAX_BODY_B", "4000000"),
        ("RELAY_VERIFY_DEFAULT", "maybe"),
        ("RELAY_TARGETS", "{not json"),
        ("RELAY_TARGETS", '["http://x"]'),
        ("RELAY_TARGETS", '{"ollama":"ftp://x"}'),
        ("RELAY_ALLOW_URLS", "not a url"),
        ("RELAY_BATCH_MS", "soon"),
        ("RELAY_KEEPALIVE_S", "0"),
        ("RELAY_MAX_DM_B", "5000000"),
        ("NKN_NUM_SUBCLIENTS", "99"),
    ],
    ids=lambda v: str(v)[:24],
)
def test_invalid_value_gives_one_line_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RelayConfig.from_env({key: value})
    message = str(caught.value)
    assert message.startswith(f"{key}: ") and "\n" not in message


@pytest.mark.parametrize(
    ("env", "limit"),
    [
        ({}, 10),  # 4 workers + 16 queued: one page's 9 streams fit, half stays for others
        ({"RELAY_WORKERS": "4", "RELAY_QUEUE": "0"}, 4),
        ({"RELAY_WORKERS": "8", "RELAY_QUEUE": "2"}, 8),
        ({"RELAY_PEER_LIMIT": "3"}, 3),
    ],
    ids=["defaults", "no-queue", "at-least-workers", "explicit"],
)
def test_one_peer_may_hold_half_the_admission_room_by_default(
    env: dict[str, str], limit: int
) -> None:
    assert RelayConfig.from_env(env).per_peer_limit == limit
