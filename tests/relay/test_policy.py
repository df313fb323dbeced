"""The relay policy: services, raw URLs, path normalisation, peers and headers."""

from __future__ import annotations

import pytest

from relay.errors import PolicyError
from relay.frames import HttpSpec
from relay.policy import Policy, forward_headers
from relay.settings import RelaySettings

BASE = "http://127.0.0.1:8080"


def _policy(**changes: object) -> Policy:
    config = RelaySettings(targets={"ollama": BASE, "sub": "http://h/base/"})
    return Policy(config.model_copy(update=changes))


@pytest.mark.parametrize(
    ("service", "path", "url"),
    [
        ("ollama", "/api/generate", f"{BASE}/api/generate"),
        ("ollama", "api/tags", f"{BASE}/api/tags"),
        ("ollama", "/api//./tags?x=1&y=a/../b", f"{BASE}/api/tags?x=1&y=a/../b"),
        ("ollama", "", f"{BASE}/"),
        ("sub", "/v1/models", "http://h/base/v1/models"),
        ("ollama", "/a b/ü", f"{BASE}/a%20b/%C3%BC"),
    ],
    ids=["plain", "relative", "dot-and-empty-segments", "empty", "base-path", "encoded"],
)
def test_paths_join_below_the_service_base(service: str, path: str, url: str) -> None:
    assert _policy().resolve(HttpSpec(service=service, path=path)).url == url


@pytest.mark.parametrize(
    "path",
    [
        "/../secret", "/api/../../x", "/%2e%2e/x", "/%2E%2e/x", "/%252e%252e/x", "/a/..%2fb",
        "..", "/a%2f..%2f..%2fb", "http://10.0.0.1/", "HTTP://x", "//evil.example/x",
        "/a\\..\\b", "/a\r\nHost: x", "file:///etc/passwd", "/a%5c..%5cb",
    ],
    ids=lambda p: repr(p)[:30],
)  # fmt: skip
def test_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _policy().resolve(HttpSpec(service="ollama", path=path))
    assert caught.value.error.startswith("bad request: ") and caught.value.status == 400


def test_unknown_service_is_refused_by_name() -> None:
    with pytest.raises(PolicyError, match="unknown service 'x'"):
        _policy().resolve(HttpSpec(service="x"))


def test_raw_url_is_refused_by_default() -> None:
    with pytest.raises(PolicyError, match="url not allowed"):
        _policy().resolve(HttpSpec(url="http://127.0.0.1:8080/api/tags"))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.example.com/v1/models", True),
        ("https://api.example.com/v1", True),
        ("https://API.example.com/v1/x?q=1", True),
        ("https://api.example.com/v1evil", False),
        ("https://api.example.com/v2/models", False),
        ("http://api.example.com/v1/models", False),
        ("https://api.example.com:444/v1/models", False),
        ("https://api.example.com.evil.net/v1/models", False),
        ("https://api.example.com/v1/../admin", False),
        ("https://user:pw@api.example.com/v1/models", False),
    ],
    ids=lambda v: str(v)[8:48],
)
def test_raw_url_must_match_the_allowlist(url: str, allowed: bool) -> None:
    policy = _policy(allow_urls=("https://api.example.com/v1",))
    if allowed:
        assert policy.resolve(HttpSpec(url=url)).url.lower() == url.lower()
    else:
        with pytest.raises(PolicyError):
            policy.resolve(HttpSpec(url=url))


def test_allowlisted_url_with_path_stays_below_it() -> None:
    policy = _policy(allow_urls=("https://api.example.com/v1/",))
    assert policy.resolve(HttpSpec(url="https://api.example.com/v1/", path="/m")).url == (
        "https://api.example.com/v1/m"
    )
    with pytest.raises(PolicyError):
        policy.resolve(HttpSpec(url="https://api.example.com/v1/", path="/../admin"))


def test_peers_are_matched_by_address_or_public_key() -> None:
    key = "ab" * 32
    policy = _policy(allowed_peers=(key, "bob." + "cd" * 32))
    policy.check_peer(f"anyone.{key}")
    policy.check_peer(key.upper())
    policy.check_peer("bob." + "cd" * 32)
    for src in ("eve." + "cd" * 32, "cd" * 32, "x"):
        with pytest.raises(PolicyError, match="forbidden"):
            policy.check_peer(src)


def test_everyone_is_allowed_when_no_peers_are_configured() -> None:
    _policy().check_peer("anyone.at.all")


def test_verify_defaults_to_the_config_and_can_be_overridden() -> None:
    assert _policy().resolve(HttpSpec(service="ollama")).verify is True
    assert _policy().resolve(HttpSpec(service="ollama", verify=False)).verify is False
    assert _policy(verify_default=False).resolve(HttpSpec(service="ollama")).verify is False


def test_hop_by_hop_host_and_connection_named_headers_are_dropped() -> None:
    headers = {
        "Host": "x", "Connection": "close, X-Drop", "X-Drop": "1", "Keep-Alive": "5",
        "TE": "trailers", "Upgrade": "h2c", "Proxy-Authorization": "p", "Content-Length": "9",
        "X-Relay-Stream": "1", "Content-Type": "application/json", "Authorization": "Bearer k",
    }  # fmt: skip
    assert forward_headers(headers) == {
        "Content-Type": "application/json",
        "Authorization": "Bearer k",
    }


@pytest.mark.parametrize(
    "headers", [{"Bad Name": "v"}, {"X-A": "v\r\nInjected: 1"}], ids=["name", "crlf"]
)
def test_invalid_headers_are_a_bad_request(headers: dict[str, str]) -> None:
    with pytest.raises(PolicyError, match="bad request"):
        forward_headers(headers)


PEER = "__1__.phone." + "ab" * 32


def test_the_relay_key_names_each_peer_to_the_farms_services_only() -> None:
    policy = _policy(farm_key="ofk_relay", allow_urls=("https://api.example.com/",))
    spoof = {"Authorization": "Bearer peer-guess", "X-Farm-Peer": "someone-else"}
    service = policy.resolve(HttpSpec(service="ollama", headers=spoof), PEER)
    assert service.headers == {
        "Authorization": "Bearer ofk_relay",
        "x-farm-peer": "phone." + "ab" * 32,  # the sub-client prefix is not the peer's identity
    }
    raw = policy.resolve(HttpSpec(url="https://api.example.com/x", headers=spoof), PEER)
    assert raw.headers == {"Authorization": "Bearer peer-guess"}  # never the relay's key


def test_without_a_relay_key_a_peers_own_key_passes_but_never_a_peer_name() -> None:
    spec = HttpSpec(service="ollama", headers={"Authorization": "Bearer k", "x-farm-peer": "p"})
    assert _policy().resolve(spec, PEER).headers == {"Authorization": "Bearer k"}
