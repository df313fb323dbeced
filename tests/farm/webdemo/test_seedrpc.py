"""`POST /nkn-rpc` on a real site process, through real sockets: a huge body is refused with 413
before the site holds it, a malformed call is a 400 JSON-RPC error (never a 500), a caller over
its rate gets 429, and the SDK's connect calls still reach the node afterwards.

The site allows each address 3 calls and then about one a minute, so every test calls from
its own loopback address (127.0.0.N): the buckets are per address, and Linux routes the whole
of 127/8 to the loopback interface.
"""

from __future__ import annotations

import itertools
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings
from relay.localnode.child import LocalNode

BURST = 3
MiB = 1024 * 1024
SDK_CALL = {"id": "nkn-sdk-js", "jsonrpc": "2.0", "method": "getwsaddr", "params": {}}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    settings = SiteSettings(nkn_rpc_burst=BURST, nkn_rpc_rate=0.02)
    with LocalNode() as node:
        cert_dir: Path = tmp_path_factory.mktemp("site")
        with SiteServer(cert_dir, settings.model_copy(update={"nkn_rpc": node.rpc_url})) as s:
            yield s


@pytest.fixture(scope="module")
def addresses() -> Iterator[str]:
    return (f"127.0.0.{n}" for n in itertools.count(10))


def client_from(site: SiteServer, address: str) -> httpx.Client:
    """An HTTPS client of `site` calling from the loopback `address`."""
    context = ssl.create_default_context(cafile=str(site.cert))
    transport = httpx.HTTPTransport(local_address=address, verify=context)
    return httpx.Client(transport=transport, base_url=site.url, timeout=10)


@pytest.fixture
def client(site: SiteServer, addresses: Iterator[str]) -> Iterator[httpx.Client]:
    """A client calling from a loopback address no other test uses."""
    with client_from(site, next(addresses)) as http:
        yield http


def assert_still_forwards(client: httpx.Client) -> None:
    reply = client.post("/nkn-rpc", json=SDK_CALL)
    assert reply.status_code == 200
    assert "addr" in reply.json()["result"]


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_300_mb_call_is_refused_with_413_and_the_site_never_holds_it(
    site: SiteServer, client: httpx.Client, declared: bool
) -> None:
    proc = psutil.Process(site.pid)
    before = proc.memory_info().rss
    growth = [0]

    def body() -> Iterator[bytes]:
        chunk = b" " * MiB
        for n in range(300):
            if n % 8 == 0:
                growth[0] = max(growth[0], proc.memory_info().rss - before)
            yield chunk

    headers = {**JSON, "content-length": str(300 * MiB)} if declared else JSON
    response = client.post("/nkn-rpc", content=body(), headers=headers)
    growth[0] = max(growth[0], proc.memory_info().rss - before)
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "seed RPC call over 65536 bytes"
    assert growth[0] < 20 * MiB
    assert_still_forwards(client)


BAD_CALLS: list[tuple[str, bytes]] = [
    ("method-number", json.dumps({**SDK_CALL, "method": 7}).encode()),
    ("method-list", json.dumps({**SDK_CALL, "method": ["getwsaddr"]}).encode()),
    ("nested-30k-deep", b"[" * 30_000 + b"]" * 30_000),
    ("not-json", b"\x00\xff{"),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_CALLS], ids=[i for i, _ in BAD_CALLS])
def test_a_malformed_call_is_a_400_json_rpc_error_never_a_500(
    client: httpx.Client, body: bytes
) -> None:
    response = client.post("/nkn-rpc", content=body, headers=JSON)
    assert response.status_code == 400
    reply: dict[str, Any] = response.json()
    assert reply["jsonrpc"] == "2.0"
    assert reply["error"]["code"] in (-32700, -32600)
    assert isinstance(reply["error"]["message"], str)
    assert_still_forwards(client)


def test_a_caller_over_its_rate_gets_429_and_other_callers_do_not(
    site: SiteServer, client: httpx.Client, addresses: Iterator[str]
) -> None:
    answers = [client.post("/nkn-rpc", json=SDK_CALL) for _ in range(BURST + 1)]
    assert [a.status_code for a in answers] == [200] * BURST + [429]
    refused = answers[-1]
    assert refused.json()["error"]["message"] == "too many seed RPC calls from this address"
    assert int(refused.headers["retry-after"]) >= 1
    with client_from(site, next(addresses)) as other:
        assert_still_forwards(other)
