"""The site's app: the page and assets, never other files; /config.json; the seed RPC forwarder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from farm.webdemo.app import create_app
from farm.webdemo.settings import SiteSettings
from relay.localnode.child import LocalNode

PUBKEY = "cd" * 32


pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(settings: SiteSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an in-process httpx client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://site") as client:
            yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = SiteSettings(
        relay_address=f"relay.{PUBKEY}", nkn_rpc="http://127.0.0.1:9/", nkn_sdk_dir=tmp_path
    )
    async with serving(settings) as http:
        yield http


@pytest.mark.parametrize(
    ("path", "media", "needle"),
    [
        ("/", "text/html", 'src="/app.js"'),
        ("/app.js", "text/javascript", "readInputs"),
        ("/style.css", "text/css", ".pane"),
        ("/chart.js", "text/javascript", "class RateChart"),
    ],
    ids=["page", "app", "style", "chart"],
)
async def test_page_and_assets_are_served_with_a_strict_csp(
    client: httpx.AsyncClient, path: str, media: str, needle: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)
    assert needle in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path", ["/certs/site-key.pem", "/site/certs/site-key.pem", "/../pyproject.toml", "/README.md"]
)
async def test_nothing_outside_the_asset_list_is_served(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 404


async def test_config_json_tells_the_page_where_to_go(client: httpx.AsyncClient) -> None:
    body = (await client.get("/config.json")).json()
    assert body["proxy_url"] == "http://127.0.0.1:8080"
    assert body["relay_address"] == f"relay.{PUBKEY}"
    assert body["nkn_rpc"] == "/nkn-rpc"
    assert body["nkn_tls"] is False
    assert body["default_model"] == "gemma3:4b"


async def test_missing_nkn_sdk_build_is_a_clear_error(client: httpx.AsyncClient) -> None:
    body = (await client.get("/config.json")).json()
    assert body["nkn_sdk"] is None
    assert "npm ci --prefix relay/bridge" in body["nkn_sdk_problem"]
    response = await client.get("/vendor/nkn.min.js")
    assert response.status_code == 404
    assert "nkn-sdk browser build not found" in response.text


async def test_nkn_sdk_browser_build_is_served_when_installed(tmp_path: Path) -> None:
    (tmp_path / "nkn.min.js").write_text("window.nkn = {};")
    async with serving(SiteSettings(nkn_sdk_dir=tmp_path)) as test_client:
        response = await test_client.get("/vendor/nkn.min.js")
        assert response.status_code == 200
        assert response.text == "window.nkn = {};"
        assert (await test_client.get("/config.json")).json()["nkn_sdk"] == "/vendor/nkn.min.js"


async def test_seed_rpc_is_forwarded_to_the_local_node() -> None:
    with LocalNode() as node:
        async with serving(SiteSettings(nkn_rpc=node.rpc_url)) as test_client:
            call = {"id": "1", "jsonrpc": "2.0", "method": "getwsaddr", "params": {}}
            reply = (await test_client.post("/nkn-rpc", json=call)).json()
            assert reply["result"]["addr"] == f"127.0.0.1:{node.port}"
            bad_call = {**call, "method": "sendrawtransaction"}
            refused = await test_client.post("/nkn-rpc", json=bad_call)
            assert refused.status_code == 403
            assert "not forwarded" in refused.json()["error"]["message"]


async def test_seed_rpc_forwarding_reports_an_unreachable_node(client: httpx.AsyncClient) -> None:
    call = {"id": "1", "jsonrpc": "2.0", "method": "getwsaddr", "params": {}}
    response = await client.post("/nkn-rpc", json=call)
    assert response.status_code == 502
    assert "NKN seed RPC unreachable" in response.json()["error"]["message"]


async def test_seed_rpc_forwarder_refuses_non_json_posts(client: httpx.AsyncClient) -> None:
    body = '{"method": "getwsaddr"}'
    response = await client.post("/nkn-rpc", content=body, headers={"content-type": "text/plain"})
    assert response.status_code == 415
