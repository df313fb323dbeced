"""Forwarding through the proxy against a small fake backend: streaming, headers, aborts."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from farm.proxy.settings import ProxySettings
from tests.farm.proxy.conftest import run_proxy
from tests.farm.proxy.fake_backend import BIG, FakeBackend

pytestmark = pytest.mark.anyio


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_stream_lines_reach_client_before_backend_finishes(fake: FakeBackend, proxy_for):
    fake.lines, fake.line_delay_s = 3, 0.3
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/x-ndjson"
            assert resp.headers["X-Accel-Buffering"] == "no"
            assert resp.headers["Cache-Control"] == "no-cache"
            first = await resp.content.readline()
            assert json.loads(first)["response"] == "t0"
            assert fake.state.finished == 0  # the first line was not held back
            rest = [json.loads(line) async for line in resp.content]
    assert [r.get("response") for r in rest] == ["t1", "t2", None]
    assert rest[-1]["done"] is True


async def test_end_to_end_headers_kept_and_hop_by_hop_dropped(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        headers = {"Host": "evil.example", "Connection": "x-hop", "X-Hop": "1", "X-E2e": "2"}
        async with http.put(proxy.url + "/api/echo?q=1", data=b"abc", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["X-Custom"] == "kept"
            echo = await resp.json()
    assert echo["method"] == "PUT"
    assert echo["path"] == "/api/echo?q=1"
    assert echo["body"] == "abc"
    assert echo["headers"]["host"] == f"127.0.0.1:{fake.port}"
    assert "x-hop" not in echo["headers"]
    assert echo["headers"]["x-e2e"] == "2"


async def test_root_get_and_head_pass_through(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/") as resp:
            assert (resp.status, await resp.text()) == (200, "Ollama is running")
        async with http.head(proxy.url + "/") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == "17"


async def test_backend_error_status_and_body_pass_unchanged(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/generate", json={"model": "missing"}) as resp:
            assert resp.status == 404
            assert await resp.json() == {"error": "model 'missing' not found"}
        async with http.get(proxy.url + "/api/unknown") as resp:
            assert resp.status == 404


async def test_client_leaving_mid_stream_cancels_backend(fake: FakeBackend, proxy_for):
    fake.lines, fake.line_delay_s = 50, 0.05
    async with proxy_for([fake.url]) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as resp:
                await resp.content.readline()
                resp.close()  # drop the connection
        await wait_until(lambda: fake.state.cancelled == 1, timeout=2.0)
        assert fake.state.finished == 0


async def test_client_leaving_before_headers_cancels_backend(fake: FakeBackend, proxy_for):
    fake.header_delay_s = 30.0  # a backend still loading or queued: no header yet
    async with proxy_for([fake.url]) as proxy:
        async with aiohttp.ClientSession() as http:
            request = asyncio.ensure_future(
                http.post(proxy.url + "/api/generate", json={"model": "m"})
            )
            await wait_until(lambda: fake.state.active == 1)
            request.cancel()  # the client gives up while the backend is silent
            with pytest.raises(asyncio.CancelledError):
                await request
        await wait_until(lambda: fake.state.cancelled == 1, timeout=2.0)
        await wait_until(lambda: proxy.app.pool.in_flight == 0)


@pytest.mark.parametrize(
    ("path", "expect"),
    [
        ("/api/generate", lambda tail: json.loads(tail)["error"]),
        ("/v1/chat/completions", lambda tail: json.loads(tail.split(b"data: ")[1])["error"]),
    ],
    ids=["ndjson", "sse"],
)
async def test_backend_dying_mid_stream_ends_with_error_event(
    fake: FakeBackend, proxy_for, path: str, expect: Any
):
    fake.lines, fake.cut_after = 5, 2
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + path, json={"model": "m", "stream": True}) as resp:
            assert resp.status == 200
            body = await resp.read()
    *_, tail = body.rstrip(b"\n").split(b"\n")
    if path.startswith("/v1"):
        assert b"event: error\n" in body
        tail = body.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert "broke off" in str(expect(tail))


async def test_unreachable_backend_gives_502_json(proxy_for):
    from farm.common.net import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    async with proxy_for([dead]) as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as resp:
            assert resp.status == 502
            assert "unreachable" in (await resp.json())["error"]
        async with http.get(proxy.url + "/_health") as resp:
            assert resp.status == 503
            assert (await resp.json())["ready"] is False


async def test_silent_backend_gives_504_after_header_timeout(fake: FakeBackend, proxy_for):
    fake.header_delay_s = 30.0
    async with proxy_for([fake.url], header_timeout=0.3) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as resp:
                assert resp.status == 504
                assert "no response within 0.3 s" in (await resp.json())["error"]
        await wait_until(lambda: fake.state.cancelled == 1)


async def test_stalled_stream_ends_with_error_line_after_idle_timeout(fake, proxy_for):
    fake.lines, fake.line_delay_s = 3, 30.0
    async with proxy_for([fake.url], idle_timeout=0.3) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.post(proxy.url + "/api/generate", json={"model": "m"}) as resp:
                lines = [json.loads(line) async for line in resp.content]
        assert lines[0]["response"] == "t0"
        assert "sent nothing for 0.3 s" in lines[-1]["error"]
        await wait_until(lambda: fake.state.cancelled == 1)


async def test_one_access_log_line_per_request(fake: FakeBackend, proxy_for, caplog):
    caplog.set_level(logging.INFO, logger="farm.proxy.access")
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/generate", json={"model": "fake"}) as resp:
            await resp.read()
        async with http.get(proxy.url + "/api/version") as resp:
            await resp.read()
    lines = [r.getMessage() for r in caplog.records if r.name == "farm.proxy.access"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /api/generate 200 model=fake:latest ")
    assert "ttfb_ms=" in lines[0] and "outcome=ok" in lines[0]
    assert lines[1].startswith("GET /api/version 200 model=- ")


async def test_large_response_arrives_intact(fake: FakeBackend, proxy_for):
    async with proxy_for([fake.url]) as proxy, aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/api/big") as resp:
            assert resp.headers["Content-Length"] == str(len(BIG))
            assert await resp.read() == BIG


async def test_pooled_connection_closed_by_backend_is_not_reused():
    fake = await FakeBackend(keepalive_s=0.05).start()
    try:
        async with run_proxy(ProxySettings(backend=(fake.url,))) as proxy:
            upstream = proxy.app.forwarder.upstreams[fake.url]
            async with aiohttp.ClientSession() as http:
                for _ in range(3):
                    async with http.post(proxy.url + "/api/echo", data=b"x") as resp:
                        assert resp.status == 200
                    # The backend drops the idle pooled connection after its keep-alive.
                    await wait_until(lambda: all(c.closed for c in upstream.idle_connections))
                assert upstream.idle_connections  # closed ones wait to be discarded on use
    finally:
        await fake.stop()
