"""The relay's `.env` on first run: private, a fresh seed each, the seed's keys, never rewritten."""

from __future__ import annotations

import stat
from pathlib import Path

from dotenv import dotenv_values

from farm.settings import load
from relay.envfile import ensure_env_file
from relay.settings import RelaySettings

SEED_KEYS = {
    "NKN_SEED_HEX", "NKN_NUM_SUBCLIENTS", "RELAY_WORKERS", "RELAY_MAX_BODY_B",
    "RELAY_VERIFY_DEFAULT", "RELAY_TARGETS", "NKN_BRIDGE_SEED_WS",
}  # fmt: skip


def _settings(env_file: Path) -> RelaySettings:
    return load(RelaySettings, ["--env-file", str(env_file)], {}).settings


def test_first_run_creates_a_private_env_with_a_fresh_seed(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    assert ensure_env_file(env)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = dotenv_values(env)
    assert SEED_KEYS <= set(values)
    settings = _settings(env)
    assert len(values["NKN_SEED_HEX"] or "") == 64 and settings.seed_hex == values["NKN_SEED_HEX"]
    assert settings.targets == {"ollama": "http://127.0.0.1:8080"}
    assert (settings.workers, settings.max_body_b, settings.num_subclients) == (4, 2_097_152, 2)
    assert settings.verify_default and settings.allow_urls == () and settings.allowed_peers == ()


def test_each_env_gets_its_own_seed_and_an_existing_one_is_kept(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    assert ensure_env_file(first) and ensure_env_file(second)
    seed_a = _settings(first).seed_hex
    assert _settings(second).seed_hex != seed_a
    assert not ensure_env_file(first)
    assert _settings(first).seed_hex == seed_a
