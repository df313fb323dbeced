"""SiteConfig: defaults, FARM_SITE_* variables, flags and the errors that name them."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.webdemo.config import SiteConfig
from farm.webdemo.errors import SiteConfigError

PUBKEY = "ab" * 32


def test_defaults_serve_https_on_8443_against_the_local_proxy() -> None:
    config = SiteConfig.from_env({})
    assert (config.host, config.port, config.proxy_url) == (
        "127.0.0.1",
        8443,
        "http://127.0.0.1:8080",
    )
    assert config.url == "https://127.0.0.1:8443/"
    assert config.own_cert is False
    assert config.relay_address is None and config.nkn_rpc is None


def test_flags_override_environment() -> None:
    env = {"FARM_SITE_PORT": "9443", "FARM_SITE_PROXY_URL": "http://127.0.0.1:9000"}
    config = SiteConfig.from_env(env, port=10443, proxy_url=None)
    assert config.port == 10443
    assert config.proxy_url == "http://127.0.0.1:9000"


def test_loopback_nkn_rpc_means_plain_ws_and_remote_means_wss() -> None:
    assert SiteConfig.from_env({}, nkn_rpc="http://127.0.0.1:30002/").nkn_tls is False
    assert SiteConfig.from_env({}, nkn_rpc="https://seed.example.org/api").nkn_tls is True
    env = {"FARM_SITE_NKN_RPC": "http://localhost:1/", "FARM_SITE_NKN_TLS": "1"}
    assert SiteConfig.from_env(env).nkn_tls is True


def test_own_certificate_needs_both_files(tmp_path: Path) -> None:
    config = SiteConfig.from_env({}, cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    assert config.own_cert is True
    with pytest.raises(SiteConfigError, match="--cert and --key"):
        SiteConfig.from_env({}, cert=tmp_path / "c.pem")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FARM_SITE_PORT": "http"}, "FARM_SITE_PORT must be an integer"),
        ({"FARM_SITE_PORT": "70000"}, "port must be 1-65535"),
        ({"FARM_SITE_PROXY_URL": "127.0.0.1:8080"}, "proxy URL must be an http"),
        ({"FARM_SITE_NKN_RPC": "ws://x:1"}, "NKN seed RPC URL must be an http"),
        ({"FARM_SITE_RELAY_ADDRESS": "relay.abc"}, "64-hex public key"),
        ({"FARM_SITE_NKN_TLS": "maybe"}, "FARM_SITE_NKN_TLS must be a boolean"),
        ({"FARM_SITE_RELAY_PING_TIMEOUT_S": "soon"}, "FARM_SITE_RELAY_PING_TIMEOUT_S must be a"),
        ({"FARM_SITE_RELAY_PING_TIMEOUT_S": "0"}, "relay ping timeout must be 0.5-120 s"),
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
    ],
)
def test_bad_settings_raise_an_error_naming_them(env: dict[str, str], message: str) -> None:
    with pytest.raises(SiteConfigError, match=message):
        SiteConfig.from_env(env)


def test_relay_address_with_identifier_is_accepted() -> None:
    assert SiteConfig.from_env({"FARM_SITE_RELAY_ADDRESS": f"relay.{PUBKEY}"}).relay_address


def test_blank_variables_count_as_unset() -> None:
    env = {"FARM_SITE_MODEL": " ", "FARM_SITE_PORT": "", "FARM_SITE_RELAY_ADDRESS": ""}
    assert SiteConfig.from_env(env) == SiteConfig()
