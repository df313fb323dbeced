"""Request policies through a running proxy: body limits, uploads, API key, CORS, pinning,
balancing and fail-over."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest

from farm.common.net import free_port
from farm.proxy.settings import ProxySettings
from farm.proxy.upstream import OutOfDescriptors
from tests.farm.proxy.conftest import run_proxy
from tests.farm.proxy.fake_backend import EXISTING_BLOB, FakeBackend
from tests.farm.proxy.test_forward import wait_until

pytestmark = pytest.mark.anyio


async def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_blob_upload_is_streamed_and_verified(fake: FakeBackend, proxy_for):
    data = bytes(range(256)) * 8192  # 2 MiB
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/blobs/" + digest, data=_chunks(data)) as resp:
            assert resp.status == 201
        wrong = "/api/blobs/sha256:" + "0" * 64
        async with http.post(proxy.url + wrong, data=_chunks(data)) as resp:
            assert resp.status == 400
    assert fake.state.blob_bytes == 2 * len(data)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_limit_gives_413(fake: FakeBackend, proxy_for, chunked: bool):
    data = b"x" * 5000
    body = _chunks(data, 1000) if chunked else data
    async with proxy_for([fake.url], max_body_bytes=4096) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.post(proxy.url + "/api/blobs/sha256:" + "0" * 64, data=body) as r:
                assert r.status == 413
                assert "4096" in (await r.json())["error"]
            async with http.post(proxy.url + "/api/echo", data=b"small") as resp:
                assert resp.status == 200


@pytest.mark.parametrize(
    ("sent", "status"),
    [(None, 401), ("Bearer wrong", 401), ("Bearer s3cret", 200)],
    ids=["missing", "wrong", "right"],
)
async def test_api_key_guards_api_routes_only(fake: FakeBackend, proxy_for, sent, status):
    headers = {"Authorization": sent} if sent else {}
    async with proxy_for([fake.url], api_key="s3cret") as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/echo", headers=headers) as resp:
            assert resp.status == status
            if status == 401:
                assert "API key" in (await resp.json())["error"]
            else:  # the proxy's key is not passed on to the backend
                assert "authorization" not in (await resp.json())["headers"]
        async with http.get(proxy.url + "/_health") as resp:
            assert resp.status == 200


async def test_without_api_key_authorization_passes_through(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer anything"}
        async with http.post(proxy.url + "/api/echo", headers=headers) as resp:
            assert (await resp.json())["headers"]["authorization"] == "Bearer anything"


async def test_cors_preflight_allowed_and_denied_origins(fake: FakeBackend, proxy_for):
    site = "https://demo.example"
    async with proxy_for([fake.url], cors_origins=(site,)) as proxy:
        async with aiohttp.ClientSession() as http:
            pre = {
                "Origin": site,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization",
            }
            async with http.options(proxy.url + "/api/chat", headers=pre) as resp:
                assert resp.status == 204
                assert resp.headers["Access-Control-Allow-Origin"] == site
                assert "authorization" in resp.headers["Access-Control-Allow-Headers"]
            async with http.post(proxy.url + "/api/echo", headers={"Origin": site}) as resp:
                assert resp.status == 200
                assert resp.headers.getall("Access-Control-Allow-Origin") == [site]
                assert "origin" not in (await resp.json())["headers"]
            bad = {"Origin": "https://evil.example"}
            async with http.post(proxy.url + "/api/echo", headers=bad) as resp:
                assert resp.status == 403


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, {"num_ctx": 8192, "num_gpu": 99}),
        ({"num_ctx": 2048, "temperature": 0}, {"num_ctx": 2048, "num_gpu": 99, "temperature": 0}),
    ],
    ids=["omitted-gets-pinned", "explicit-kept"],
)
async def test_option_pinning(fake: FakeBackend, proxy_for, options, expected):
    body = {"model": "m", "prompt": "p", **({"options": options} if options else {})}
    async with proxy_for([fake.url], pin_num_ctx=8192, pin_num_gpu=99) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.post(proxy.url + "/api/generate", json=body) as resp:
                await resp.read()
    assert fake.state.seen[-1]["options"] == expected


async def test_pinning_is_off_by_default(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        raw = b'{"model": "m",  "prompt": "p"}'  # odd spacing: bytes must pass untouched
        async with http.post(proxy.url + "/api/generate", data=raw) as resp:
            await resp.read()
    assert "options" not in fake.state.seen[-1]


async def test_two_backends_share_streams_and_fail_over():
    one = await FakeBackend(lines=3, header_delay_s=0.5).start()
    two = await FakeBackend(lines=3, header_delay_s=0.5).start()
    try:
        config = ProxySettings(backend=(one.url, two.url), health_interval=0.2)
        async with run_proxy(config) as proxy, aiohttp.ClientSession() as http:

            async def generate() -> int:
                async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as r:
                    await r.read()
                    return r.status

            assert await asyncio.gather(*(generate() for _ in range(8))) == [200] * 8
            assert (one.state.started, two.state.started) == (4, 4)
            await one.stop()
            statuses = await asyncio.gather(*(generate() for _ in range(4)))
            assert statuses == [200] * 4
            assert two.state.started == 8
            await wait_until(lambda: not proxy.app.pool.backends[0].up)
    finally:
        await one.stop()
        await two.stop()


async def test_metrics_count_requests_and_aborts(fake: FakeBackend, proxy_for):
    fake.header_delay_s = 30
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(http.post(proxy.url + "/api/generate", json={"model": "m"}))
        await wait_until(lambda: fake.state.active == 1)
        request.cancel()
        await wait_until(lambda: proxy.app.pool.in_flight == 0)
        async with http.get(proxy.url + "/metrics") as resp:
            text = await resp.text()
    assert 'farm_proxy_client_aborts_total{phase="before_headers"} 1.0' in text
    assert 'farm_proxy_requests_total{method="POST",route="/api/generate",status="499"} 1.0' in text
    assert "farm_proxy_in_flight 0.0" in text


async def test_health_reports_backends_and_settings(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url], model="fake", num_parallel=4) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.get(proxy.url + "/_health") as resp:
                doc = await resp.json()
                # The model is in the store but not loaded yet: not ready.
                assert resp.status == 503
            async with http.post(proxy.url + "/api/generate", json={"model": "fake"}) as r:
                await r.read()
            async with http.get(proxy.url + "/_health") as resp:
                assert resp.status == 200
                assert (await resp.json())["backends"][0]["models_loaded"] == ["fake:latest"]
    assert doc["model"] == "fake" and doc["num_parallel"] == 4
    assert doc["backends"][0]["reachable"] is True
    assert doc["backends"][0]["version"] == "0.0.0-fake"
    # Only the simulator answers /_sim/state: anything else is a real Ollama.
    assert doc["synthetic"] is False and doc["backends"][0]["synthetic"] is False
    assert json.dumps(doc)
    assert free_port()


async def test_backend_marked_down_by_probes_comes_back_when_it_recovers():
    fake = await FakeBackend().start()
    try:
        async with run_proxy(ProxySettings(backend=(fake.url,), health_interval=0.05)) as proxy:
            backend = proxy.app.pool.backends[0]
            assert backend.up
            await fake.stop()
            await wait_until(lambda: not backend.up)
            fake = await FakeBackend(port=fake.port).start()
            await wait_until(lambda: backend.up)
            async with aiohttp.ClientSession() as http:
                async with http.get(proxy.url + "/api/version") as resp:
                    assert resp.status == 200
    finally:
        await fake.stop()


async def test_blob_the_backend_already_has_answers_without_reading_the_upload(fake, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        for _ in range(2):  # the connection left half-written must not be reused
            body = _chunks(b"z" * (4 * 1024 * 1024))
            async with http.post(proxy.url + "/api/blobs/" + EXISTING_BLOB, data=body) as resp:
                assert resp.status == 200
        async with http.get(proxy.url + "/api/version") as resp:
            assert resp.status == 200
    assert fake.state.blob_bytes == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_json_bodies_have_the_door_cap_and_blob_uploads_do_not(fake, proxy_for, chunked):
    data = b'{"model": "m", "prompt": "' + b"x" * 5000 + b'"}'
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with proxy_for([fake.url], client_max_body_size=4096) as proxy:
        async with aiohttp.ClientSession() as http:
            body = _chunks(data, 1000) if chunked else data
            async with http.post(proxy.url + "/api/generate", data=body) as resp:
                assert resp.status == 413
                assert "--client-max-body-size" in (await resp.json())["error"]
            body = _chunks(data, 1000) if chunked else data
            async with http.post(proxy.url + "/api/blobs/" + digest, data=body) as resp:
                assert resp.status == 201
    assert fake.state.seen == []
    assert fake.state.blob_bytes == len(data)


async def test_out_of_descriptors_is_a_503_and_the_backend_stays_up(fake, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        upstream = proxy.app.forwarder.upstreams[fake.url]

        async def no_descriptor_left():
            raise OutOfDescriptors("[Errno 24] Too many open files")

        upstream.acquire = no_descriptor_left
        async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as resp:
            assert resp.status == 503
            assert "ulimit -n" in (await resp.json())["error"]
        assert all(b.up for b in proxy.app.pool.backends)
