"""The relay's settings: the seed's `.env` keys, precedence, one-line errors, `--print-config`,
and argv + environment that reproduce every settings object (relay, local node, client)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.settings import ServiceSettings, SettingsError, child_env, load, to_argv
from farm.settings.load import validate
from relay.__main__ import main as relay_main
from relay.bridge import BridgeConfigError
from relay.client.__main__ import main as client_main
from relay.client.settings import RelayClientSettings
from relay.localnode.settings import LocalNodeSettings
from relay.settings import MAX_DM_B_LIMIT, RESPONSE_OVERHEAD_B, RelaySettings

SEED = "ab" * 32
MISSING = "/nonexistent/relay.env"  # no `.env` is read unless a test writes one


def _load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> RelaySettings:
    return load(RelaySettings, ["--env-file", MISSING, *(argv or [])], environ or {}).settings


def _env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.env"
    path.write_text(text)
    return path


def test_the_seed_keys_are_read_from_the_env_file(tmp_path: Path) -> None:
    path = _env_file(
        tmp_path,
        f"NKN_SEED_HEX={SEED.upper()}\nNKN_NUM_SUBCLIENTS=3\nRELAY_WORKERS=7\n"
        "RELAY_MAX_BODY_B=1000\nRELAY_VERIFY_DEFAULT=0\n"
        'RELAY_TARGETS={"ollama":"http://10.0.0.2:8080","sim":"http://127.0.0.1:11434"}\n'
        "NKN_BRIDGE_SEED_WS=wss://seed1:30003,ws://seed2:30002\n",
    )
    loaded = load(RelaySettings, ["--env-file", str(path)], {})
    s = loaded.settings
    assert s.seed_hex == SEED and (s.num_subclients, s.workers, s.max_body_b) == (3, 7, 1000)
    assert not s.verify_default and set(s.targets) == {"ollama", "sim"}
    assert s.bridge_seed_ws == ("https://seed1:30003/", "http://seed2:30002/")
    assert loaded.origins["workers"] == f".env RELAY_WORKERS ({path})"


def test_the_environment_beats_the_env_file_and_a_flag_beats_both(tmp_path: Path) -> None:
    path = _env_file(tmp_path, "RELAY_WORKERS=5\nRELAY_QUEUE=6\nRELAY_BATCH_MS=7\n")
    environ = {"RELAY_WORKERS": "8", "RELAY_QUEUE": "9"}
    loaded = load(RelaySettings, ["--env-file", str(path), "--workers", "10"], environ)
    s = loaded.settings
    assert (s.workers, s.queue, s.batch_ms) == (10, 9, 7)
    assert loaded.origins["workers"] == "flag --workers"
    assert loaded.origins["queue"] == "env RELAY_QUEUE"


def test_optional_keys_are_read() -> None:
    s = _load(
        environ={
            "RELAY_ALLOW_URLS": "https://api.example.com/v1, https://b.example/",
            "RELAY_ALLOWED_PEERS": '["AB' + "ab" * 31 + '"]',
            "NKN_RPC_SERVER_ADDR": "http://127.0.0.1:9/",
            "NKN_BRIDGE_SEED_WS": "wss://seed.example:30005",
            "NKN_IDENTIFIER": "farm",
            "RELAY_BATCH_LINES": "1",
            "RELAY_BATCH_MS": "0",
            "RELAY_KEEPALIVE_S": "0.5",
        }
    )
    assert s.allow_urls == ("https://api.example.com/v1", "https://b.example/")
    assert s.allowed_peers == ("ab" * 32,)
    assert s.rpc_server_addrs == ("http://127.0.0.1:9/", "https://seed.example:30005/")
    assert (s.identifier, s.batch_lines, s.batch_ms, s.keepalive_s) == ("farm", 1, 0, 0.5)


def test_bad_workers_in_the_env_file_names_the_key_and_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _env_file(tmp_path, f"NKN_SEED_HEX={SEED}\nRELAY_WORKERS=four\n")
    assert relay_main(["--env-file", str(path)], {}) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"python -m relay: error: RELAY_WORKERS in {path} 'four': ")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NKN_SEED_HEX", "xyz"),
        ("NKN_SEED_HEX", "ab" * 31),
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
        ("RELAY_PEER_UNSENT_B", "100"),
        ("RELAY_PEER_UNSENT_B", "1000000"),  # under RELAY_MAX_DM_B: no DM would fit
        ("RELAY_UNSENT_B", "1000000"),  # under RELAY_PEER_UNSENT_B
        ("RELAY_ACK_TIMEOUT_S", "0"),
        ("NKN_NUM_SUBCLIENTS", "99"),
        ("NKN_NUM_SUBCLIENTS", "0"),
        ("NKN_IDENTIFIER", "a b"),
        ("NKN_RPC_SERVER_ADDR", "gopher://x"),
        ("NKN_BRIDGE_SEED_WS", "ws://"),
    ],
    ids=lambda v: str(v)[:24],
)
def test_invalid_value_gives_one_line_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(environ={key: value})
    message = str(caught.value)
    assert message.startswith(key) and "\n" not in message


def test_the_seed_is_never_shown_in_an_error() -> None:
    with pytest.raises(SettingsError) as caught:
        _load(environ={"NKN_SEED_HEX": "cd" * 31})
    assert "cd" * 31 not in str(caught.value)


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
    assert _load(environ=env).per_peer_limit == limit


@pytest.mark.parametrize(
    ("seed_ws", "expected"),
    [
        ("ws://127.0.0.1:30002", 1),
        ("http://localhost:30003/,[::1]:30004", 1),
        ("ws://127.0.0.1:30002,wss://seed.example:30005", 2),
        ("", 2),
    ],
    ids=["local-node", "all-loopback", "mixed", "mainnet"],
)
def test_without_num_subclients_a_local_node_gets_one(seed_ws: str, expected: int) -> None:
    # One local node gives extra sub-clients no second path, only a second copy of each DM.
    environ = {"NKN_SEED_HEX": SEED, "NKN_BRIDGE_SEED_WS": seed_ws}
    assert _load(environ=environ).bridge_config().num_subclients == expected
    explicit = _load(environ=environ | {"NKN_NUM_SUBCLIENTS": "2"})
    assert explicit.bridge_config().num_subclients == 2


def test_bridge_config_carries_the_identity_and_the_node_environment() -> None:
    s = _load(environ={"NKN_SEED_HEX": SEED, "NKN_IDENTIFIER": "farm"})
    bridge = s.bridge_config({"PATH": "/bin"})
    assert (bridge.seed_hex, bridge.identifier, bridge.environ) == (SEED, "farm", {"PATH": "/bin"})
    with pytest.raises(BridgeConfigError, match="^NKN_SEED_HEX: missing"):
        _load().bridge_config()


def test_the_bridge_outbox_bound_follows_the_relays_backlog_cap() -> None:
    s = _load(environ={"NKN_SEED_HEX": SEED, "RELAY_UNSENT_B": "8000000"})
    assert s.unsent_b == 8_000_000 and s.bridge_config().queue_limit_b == 16_000_000


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NKN_", "RELAY_"))}


def test_print_config_redacts_the_seed_and_names_each_origin(tmp_path: Path) -> None:
    path = _env_file(tmp_path, f"NKN_SEED_HEX={SEED}\nRELAY_WORKERS=6\n")
    result = subprocess.run(
        [sys.executable, "-m", "relay", "--print-config", "--env-file", str(path)],
        env=_clean_environ() | {"RELAY_QUEUE": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert SEED not in result.stdout
    rows = {line.split(" = ")[0].strip(): line for line in result.stdout.splitlines()}
    assert "********" in rows["seed_hex"] and f".env NKN_SEED_HEX ({path})" in rows["seed_hex"]
    assert rows["workers"].endswith(f"(.env RELAY_WORKERS ({path}))")
    assert rows["queue"].endswith("(env RELAY_QUEUE)")


def test_print_config_does_not_create_the_env_file(tmp_path: Path) -> None:
    path = tmp_path / "new.env"
    assert relay_main(["--print-config", "--env-file", str(path)], {}) == 0
    assert not path.exists()


def test_client_old_rpc_flag_still_works_with_a_warning() -> None:
    argv = [
        "--to",
        "relay",
        "--model",
        "m",
        "--prompt",
        "p",
        "--rpc",
        "127.0.0.1:1,ws://localhost:2",
    ]
    loaded = load(RelayClientSettings, argv, {})
    assert loaded.settings.nkn_rpc == ("http://127.0.0.1:1/", "http://localhost:2/")
    assert loaded.warnings == ("--rpc is deprecated and will be removed: use --nkn-rpc",)
    bridge = loaded.settings.bridge_config(SEED)
    assert (bridge.seed_hex, bridge.num_subclients) == (SEED, 1)


def test_client_bad_seed_names_the_flag_without_showing_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--to", "relay", "--model", "m", "--prompt", "p", "--seed-hex", "12" * 31]
    assert client_main(argv, {}) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m relay.client: error: --seed-hex ") and "12" * 31 not in line


def test_local_node_flags_keep_their_spelling() -> None:
    argv = ["--no-verify-signatures", "--port", "0", "--certfile", "c.pem", "--keyfile", "k.pem"]
    s = load(LocalNodeSettings, argv, {}).settings
    assert (s.verify_signatures, s.port, s.tls) == (False, 0, True)
    with pytest.raises(SettingsError, match="--certfile and --keyfile go together"):
        load(LocalNodeSettings, ["--certfile", "c.pem"], {})


# -- argv + environment reproduce the settings ------------------------------------------------

_hosts = st.sampled_from(["127.0.0.1", "localhost", "seed.example", "10.0.0.2", "[::1]"])
_http_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}:{port}/{path}",
    st.sampled_from(["http", "https"]),
    _hosts,
    st.integers(1, 65535),
    st.from_regex(r"[a-z0-9/]{0,8}", fullmatch=True),
)
_hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_words = st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_.:-]{0,15}", fullmatch=True)


@st.composite
def relay_settings(draw: st.DrawFn) -> RelaySettings:
    max_dm_b = draw(st.integers(RESPONSE_OVERHEAD_B + 4, MAX_DM_B_LIMIT))
    values: dict[str, Any] = {
        "env_file": Path(MISSING),
        "debug": draw(st.booleans()),
        "log_level": draw(st.sampled_from(["DEBUG", "info", "WARNING"])),
        "seed_hex": draw(st.just("") | _hex64),
        "num_subclients": draw(st.none() | st.integers(1, 16)),
        "identifier": draw(st.just("") | st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)),
        "nkn_rpc": draw(st.lists(_http_urls, max_size=3)),
        "bridge_seed_ws": draw(st.lists(_http_urls, max_size=3)),
        "targets": draw(st.dictionaries(_words, _http_urls, min_size=1, max_size=3)),
        "verify_default": draw(st.booleans()),
        "allow_urls": draw(st.lists(_http_urls, max_size=3)),
        "allowed_peers": draw(st.lists(_words, max_size=3)),
        "workers": draw(st.integers(1, 1024)),
        "queue": draw(st.integers(0, 100_000)),
        "peer_limit": draw(st.integers(0, 100_000)),
        "max_body_b": draw(st.integers(1, (max_dm_b - RESPONSE_OVERHEAD_B) * 3 // 4)),
        "batch_lines": draw(st.integers(1, 10_000)),
        "batch_ms": draw(st.integers(0, 60_000)),
        "keepalive_s": draw(st.floats(0.05, 3600.0)),
        "max_line_b": draw(st.integers(64, MAX_DM_B_LIMIT)),
        "max_dm_b": max_dm_b,
        "ack_timeout_s": draw(st.floats(0.05, 3600.0)),
    }
    values["peer_unsent_b"] = draw(st.integers(max_dm_b, 2**40))
    values["unsent_b"] = draw(st.integers(values["peer_unsent_b"], 2**40))
    return validate(RelaySettings, values)


@st.composite
def local_node_settings(draw: st.DrawFn) -> LocalNodeSettings:
    tls = draw(st.booleans())
    files = st.from_regex(r"[a-z0-9_/]{1,12}\.pem", fullmatch=True).map(Path)
    values: dict[str, Any] = {
        "host": draw(st.sampled_from(["127.0.0.1", "::1", "localhost", "0.0.0.0"])),
        "port": draw(st.integers(0, 65535)),
        "certfile": draw(files) if tls else None,
        "keyfile": draw(files) if tls else None,
        "verify_signatures": draw(st.booleans()),
        "debug": draw(st.booleans()),
        "max_frame_bytes": draw(st.integers(4_300_000, 2**31)),
        "max_held": draw(st.integers(0, 10**6)),
    }
    return validate(LocalNodeSettings, values)


@st.composite
def client_settings(draw: st.DrawFn) -> RelayClientSettings:
    values: dict[str, Any] = {
        "to": draw(st.from_regex(r"([a-z0-9_]{1,8}\.)?[0-9a-f]{64}", fullmatch=True)),
        "model": draw(st.from_regex(r"[a-z0-9]{1,10}(:[a-z0-9.]{1,6})?", fullmatch=True)),
        "prompt": draw(st.text(max_size=40).filter(lambda t: not t.startswith("-"))),
        "service": draw(_words),
        "nkn_rpc": draw(st.lists(_http_urls, max_size=3)),
        "seed_hex": draw(st.none() | _hex64),
        "timeout": draw(st.floats(0.001, 1e6)),
    }
    return validate(RelayClientSettings, values)


def _round_trip(settings: ServiceSettings) -> None:
    again = load(type(settings), to_argv(settings), child_env(settings)).settings
    assert again == settings


@given(relay_settings())
def test_relay_settings_survive_argv_and_environment(settings: RelaySettings) -> None:
    _round_trip(settings)
    assert settings.seed_hex == "" or settings.seed_hex not in " ".join(to_argv(settings))


@given(local_node_settings())
def test_local_node_settings_survive_argv_and_environment(settings: LocalNodeSettings) -> None:
    _round_trip(settings)


@given(client_settings())
def test_client_settings_survive_argv_and_environment(settings: RelayClientSettings) -> None:
    _round_trip(settings)
