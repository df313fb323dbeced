"""The farm's capacity as the site reads it from the proxy's `/_health` and serves `/farm.json`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from farm.webdemo.app import create_app
from farm.webdemo.capacity import FarmView, read_farm, view_of
from farm.webdemo.settings import SiteSettings

HEALTH = {
    "ready": True,
    "num_parallel": 4,
    "in_flight": 3,
    "synthetic": True,
    "engine": None,
    "backends": [{"url": "http://a", "reachable": True}, {"url": "http://b", "reachable": False}],
}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            HEALTH,
            FarmView(True, True, None, slots_per_backend=4, backends=2, backends_up=1, in_flight=3),
        ),
        ({**HEALTH, "num_parallel": None}, FarmView(True, True, None, None, 2, 1, 3)),
        ({"num_parallel": "4", "backends": "x"}, FarmView(True)),
        ([], FarmView(False, problem="the proxy's /_health is not a JSON object")),
    ],
    ids=["told-slots", "slots-unknown", "wrong-types", "not-an-object"],
)
def test_the_view_takes_only_well_typed_fields(doc: Any, expected: FarmView) -> None:
    assert view_of(doc) == expected


@pytest.mark.anyio
async def test_a_proxy_that_is_down_gives_a_view_that_says_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        view = await read_farm("http://127.0.0.1:9/", client)
    assert view == FarmView(False, problem="cannot reach http://127.0.0.1:9/_health: ConnectError")


@pytest.mark.anyio
async def test_farm_json_serves_the_view_of_the_proxy_it_fronts() -> None:
    app = create_app(SiteSettings(proxy_url="http://127.0.0.1:9"))
    async with app.router.lifespan_context(app):
        # The app's own client would dial the proxy; answer for it instead.
        app.state.http = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=HEALTH))
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://site") as client:
            farm = (await client.get("/farm.json")).json()
            config = (await client.get("/config.json")).json()
        await app.state.http.aclose()
    assert farm["slots_per_backend"] == 4 and farm["backends"] == 2 and farm["backends_up"] == 1
    assert config["farm"] == farm and config["synthetic"] is True
    assert config["relay_silence_ms"] == 15000
