"""SiteSettings: defaults, FARM_SITE_* variables, flags over variables, one-line errors naming
the flag or variable, `--print-config`, and the argv + environment a parent hands a child."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.settings import SettingsError, child_env, load, to_argv
from farm.webdemo.settings import SiteSettings

PUBKEY = "ab" * 32


def test_defaults_serve_https_on_8443_against_the_local_proxy() -> None:
    settings = load(SiteSettings, [], {}).settings
    assert (settings.host, settings.port, settings.proxy_url) == (
        "127.0.0.1",
        8443,
        "http://127.0.0.1:8080",
    )
    assert settings.url == "https://127.0.0.1:8443/"
    assert settings.own_cert is False
    assert settings.relay_address is None and settings.nkn_rpc is None
    assert settings.model == "gemma3:4b"
    assert settings.relay_ping_timeout == 8.0
    assert settings.relay_silence == 15.0  # above the relay's 10 s keepalive


VARIABLES = [
    ("FARM_SITE_HOST", "0.0.0.0", "host", "0.0.0.0"),
    ("FARM_SITE_PORT", "9443", "port", 9443),
    ("FARM_SITE_PROXY_URL", "http://10.0.0.2:8080", "proxy_url", "http://10.0.0.2:8080"),
    ("FARM_SITE_RELAY_ADDRESS", f"relay.{PUBKEY}", "relay_address", f"relay.{PUBKEY}"),
    ("FARM_SITE_RELAY_SERVICE", "gpu", "relay_service", "gpu"),
    ("FARM_SITE_NKN_RPC", "http://127.0.0.1:30002/", "nkn_rpc", "http://127.0.0.1:30002/"),
    ("FARM_SITE_NKN_TLS", "1", "nkn_tls", True),
    ("FARM_SITE_MODEL", "qwen3:8b", "model", "qwen3:8b"),
    ("FARM_SITE_RELAY_PING_TIMEOUT_S", "2.5", "relay_ping_timeout", 2.5),
    ("FARM_SITE_RELAY_SILENCE_S", "4", "relay_silence", 4.0),
    ("FARM_SITE_NKN_SDK_DIR", "/opt/nkn", "nkn_sdk_dir", Path("/opt/nkn")),
]


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"), VARIABLES, ids=[row[0] for row in VARIABLES]
)
def test_each_variable_sets_its_setting(
    variable: str, text: str, field: str, value: object
) -> None:
    loaded = load(SiteSettings, [], {variable: text})
    assert getattr(loaded.settings, field) == value
    assert loaded.origins[field] == f"env {variable}"


def test_flags_beat_variables() -> None:
    env = {"FARM_SITE_PORT": "9443", "FARM_SITE_PROXY_URL": "http://127.0.0.1:9000"}
    settings = load(SiteSettings, ["--port", "10443"], env).settings
    assert settings.port == 10443
    assert settings.proxy_url == "http://127.0.0.1:9000"


def test_loopback_nkn_rpc_means_plain_ws_and_remote_means_wss() -> None:
    assert not SiteSettings(nkn_rpc="http://127.0.0.1:30002/").browser_nkn_tls
    assert not SiteSettings(nkn_rpc="http://localhost:30002/").browser_nkn_tls
    assert SiteSettings(nkn_rpc="https://seed.example.org/api").browser_nkn_tls
    assert SiteSettings().browser_nkn_tls  # the mainnet
    env = {"FARM_SITE_NKN_RPC": "http://localhost:1/", "FARM_SITE_NKN_TLS": "1"}
    assert load(SiteSettings, [], env).settings.browser_nkn_tls is True
    assert load(SiteSettings, ["--no-nkn-tls"], {}).settings.browser_nkn_tls is False


def test_own_certificate_needs_both_files(tmp_path: Path) -> None:
    argv = ["--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem")]
    assert load(SiteSettings, argv, {}).settings.own_cert is True
    with pytest.raises(SettingsError, match="--cert and --key"):
        load(SiteSettings, argv[:2], {})
    with pytest.raises(SettingsError, match="--cert and --key"):
        load(SiteSettings, [], {"FARM_SITE_KEY": "k.pem"})


@pytest.mark.parametrize(
    ("argv", "env", "start", "message"),
    [
        ([], {"FARM_SITE_PORT": "http"}, "FARM_SITE_PORT 'http'", "valid integer"),
        (["--port", "70000"], {}, "--port '70000'", "less than or equal to 65535"),
        (["--proxy-url", "127.0.0.1:8080"], {}, "--proxy-url '127.0.0.1:8080'", "http(s) URL"),
        ([], {"FARM_SITE_NKN_RPC": "ws://x:1"}, "FARM_SITE_NKN_RPC 'ws://x:1'", "http(s) URL"),
        (["--relay-address", "relay.abc"], {}, "--relay-address 'relay.abc'", "64-hex"),
        ([], {"FARM_SITE_NKN_TLS": "maybe"}, "FARM_SITE_NKN_TLS 'maybe'", "valid boolean"),
        (["--relay-ping-timeout", "soon"], {}, "--relay-ping-timeout 'soon'", "valid number"),
        ([], {"FARM_SITE_RELAY_PING_TIMEOUT_S": "0"}, "FARM_SITE_RELAY_PING_TIMEOUT_S '0'", "0.5"),
        (["--model", " "], {}, "--model ' '", "must not be blank"),
    ],
    ids=[
        "port-not-int",
        "port-range",
        "proxy-scheme",
        "rpc-scheme",
        "relay-addr",
        "tls-bool",
        "ping-not-number",
        "ping-range",
        "model-blank",
    ],
)
def test_a_bad_value_is_one_line_naming_the_flag_or_variable(
    argv: list[str], env: dict[str, str], start: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(SiteSettings, argv, env)
    text = str(caught.value)
    assert text.startswith(start + ": ")
    assert message in text
    assert "\n" not in text


def test_relay_address_with_identifier_is_accepted() -> None:
    env = {"FARM_SITE_RELAY_ADDRESS": f"relay.{PUBKEY}"}
    assert load(SiteSettings, [], env).settings.relay_address == f"relay.{PUBKEY}"


def test_blank_variables_count_as_unset() -> None:
    env = {"FARM_SITE_MODEL": " ", "FARM_SITE_PORT": "", "FARM_SITE_RELAY_ADDRESS": ""}
    assert load(SiteSettings, [], env).settings == SiteSettings()


def run_module(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm.webdemo", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_print_config_shows_each_value_and_where_it_came_from() -> None:
    result = run_module("--port", "9443", "--print-config", env={"FARM_SITE_MODEL": "qwen3:8b"})
    assert result.returncode == 0, result.stderr
    rows = {line.split("=")[0].strip(): line for line in result.stdout.splitlines()}
    assert rows["port"].endswith("= 9443  (flag --port)")
    assert rows["model"].endswith("= qwen3:8b  (env FARM_SITE_MODEL)")
    assert rows["proxy_url"].endswith("= http://127.0.0.1:8080  (default)")
    assert rows["cert"].endswith("= -  (default)")


def test_a_bad_variable_stops_the_cli_with_one_line_and_no_traceback() -> None:
    result = run_module(env={"FARM_SITE_PORT": "http"})
    assert result.returncode == 2
    assert result.stderr.startswith("python -m farm.webdemo: error: FARM_SITE_PORT 'http': ")
    assert result.stderr.count("\n") == 1


WORD = st.from_regex(r"[a-z][a-z0-9._:-]{0,12}", fullmatch=True)
PATH = st.builds(
    Path, st.from_regex(r"/?[a-z][a-z0-9_.-]{0,8}(/[a-z0-9_.-]{1,8}){0,2}", fullmatch=True)
)
URL = st.builds(
    "{}://{}:{}{}".format,
    st.sampled_from(["http", "https"]),
    st.sampled_from(["127.0.0.1", "localhost", "[::1]", "seed.example.org"]),
    st.integers(1, 65535),
    st.sampled_from(["", "/", "/api"]),
)
NKN_ADDRESS = st.builds(
    "{}{}".format,
    st.sampled_from(["", "relay.", "__0__.relay."]),
    st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
)
CERT_PAIR = st.one_of(st.just((None, None)), st.tuples(PATH, PATH))


@st.composite
def site_settings(draw: st.DrawFn) -> SiteSettings:
    cert, key = draw(CERT_PAIR)
    return SiteSettings(
        host=draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "::", "::1", "localhost"])),
        port=draw(st.integers(1, 65535)),
        cert=cert,
        key=key,
        proxy_url=draw(URL),
        relay_address=draw(st.none() | NKN_ADDRESS),
        relay_service=draw(WORD),
        nkn_rpc=draw(st.none() | URL),
        nkn_tls=draw(st.sampled_from([None, True, False])),
        model=draw(WORD),
        relay_ping_timeout=draw(st.floats(0.5, 120, allow_nan=False)),
        relay_silence=draw(st.floats(0.5, 3600, allow_nan=False)),
        nkn_sdk_dir=draw(st.none() | PATH),
    )


@given(site_settings())
def test_a_child_loads_back_exactly_the_settings_its_parent_rendered(
    settings: SiteSettings,
) -> None:
    assert load(SiteSettings, to_argv(settings), child_env(settings)).settings == settings
