"""Request bodies are streamed: a 1 GiB blob upload leaves the proxy's memory flat."""

from __future__ import annotations

import asyncio

import aiohttp
import psutil
import pytest

from farm.proxy.child import ProxyServer
from tests.farm.proxy.fake_backend import FakeBackend

pytestmark = pytest.mark.anyio

GIB = 1024**3
CHUNK = b"\xa5" * (1024 * 1024)


async def _gib():
    for _ in range(GIB // len(CHUNK)):
        yield CHUNK


async def _gib_prefix(n: int):
    for _ in range(n):
        yield CHUNK


async def test_one_gib_blob_upload_keeps_proxy_rss_growth_under_30_mb():
    fake = await FakeBackend().start()
    fake.verify_blobs = False  # hashing 1 GiB twice would only slow the test down
    server = ProxyServer([fake.url], access_log=False)
    await asyncio.to_thread(server.start)
    try:
        proc = psutil.Process(server.pid)
        url = server.url + "/api/blobs/sha256:" + "a" * 64
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=_gib_prefix(4)) as warm:  # warm the code paths
                assert warm.status == 201
            base = peak = proc.memory_info().rss
            upload = asyncio.ensure_future(
                http.post(url, data=_gib(), headers={"Content-Length": str(GIB)})
            )
            while not upload.done():
                peak = max(peak, proc.memory_info().rss)
                await asyncio.sleep(0.02)
            async with upload.result() as resp:
                assert resp.status == 201
        assert fake.state.blob_bytes == GIB + 4 * len(CHUNK)
        growth_mb = (peak - base) / 1e6
        assert growth_mb < 30, f"proxy RSS grew by {growth_mb:.1f} MB"
    finally:
        await asyncio.to_thread(server.stop)
        await fake.stop()
