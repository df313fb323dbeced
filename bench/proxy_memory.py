"""The proxy benchmark's memory checks: RSS with many slow streams open, and RSS growth
during one large streamed blob upload.

RSS is summed over the server's process tree (`bench.process_tree`), sampled every
`SAMPLE_S` while the load is on.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from bench.process_tree import tree_rss_mb
from bench.proxy_streams import generate_body

SAMPLE_S = 0.02
MIB = 1024 * 1024
OPEN_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class StreamsRss:
    """RSS idle and at its peak with `opened` of `wanted` slow streams open."""

    idle_mb: float
    peak_mb: float
    opened: int
    wanted: int


@dataclass(frozen=True, slots=True)
class UploadRss:
    """RSS before and at its peak during one streamed upload of `bytes_sent` bytes."""

    base_mb: float
    peak_mb: float
    bytes_sent: int
    status: int

    @property
    def growth_mb(self) -> float:
        """Peak minus base."""
        return self.peak_mb - self.base_mb


def rss_with_streams(pid: int, url: str, streams: int, tokens: int) -> StreamsRss:
    """Open `streams` generate streams through `url`, hold them, sample the server's RSS."""
    return asyncio.run(_hold(pid, url, streams, tokens))


async def _hold(pid: int, url: str, streams: int, tokens: int) -> StreamsRss:
    idle_mb = tree_rss_mb(pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        opened = asyncio.Event()
        count = 0

        async def stream(i: int) -> None:
            nonlocal count
            body = generate_body(f"rss {i}", tokens)
            async with http.post(url + "/api/generate", json=body) as resp:
                await resp.content.readline()
                count += 1
                if count == streams:
                    opened.set()
                await resp.read()

        tasks = [asyncio.ensure_future(stream(i)) for i in range(streams)]
        try:
            await asyncio.wait_for(opened.wait(), OPEN_TIMEOUT_S)
        except TimeoutError:
            pass
        peak = idle_mb
        for _ in range(50):
            peak = max(peak, tree_rss_mb(pid))
            await asyncio.sleep(SAMPLE_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return StreamsRss(idle_mb, peak, count, streams)


def blob_chunk(label: str) -> bytes:
    """The 1 MiB chunk an upload repeats; `label` makes each server's blob a new one."""
    seed = hashlib.sha256(label.encode()).digest()
    return (seed * (MIB // len(seed) + 1))[:MIB]


def blob_digest(chunk: bytes, count: int) -> str:
    """`sha256:<hex>` of `chunk` repeated `count` times (computed before the clock starts)."""
    hasher = hashlib.sha256()
    for _ in range(count):
        hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


async def _chunks(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield chunk


def rss_during_upload(pid: int, url: str, mib: int, label: str) -> UploadRss:
    """Upload a `mib` MiB blob through `url` (`POST /api/blobs/<digest>`, streamed, with a
    Content-Length) and sample the server's RSS; a 4 MiB upload first warms the code paths."""
    chunk = blob_chunk(label)
    warm, digest = blob_digest(chunk[::-1], 4), blob_digest(chunk, mib)
    return asyncio.run(_upload(pid, url, chunk, mib, warm, digest))


async def _upload(pid: int, url: str, chunk: bytes, mib: int, warm: str, digest: str) -> UploadRss:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
        async with http.post(f"{url}/api/blobs/{warm}", data=_chunks(chunk[::-1], 4)) as resp:
            await resp.read()
        base = peak = tree_rss_mb(pid)
        upload = asyncio.ensure_future(
            http.post(
                f"{url}/api/blobs/{digest}",
                data=_chunks(chunk, mib),
                headers={"Content-Length": str(mib * MIB)},
            )
        )
        while not upload.done():
            peak = max(peak, tree_rss_mb(pid))
            await asyncio.sleep(SAMPLE_S)
        async with upload.result() as resp:
            await resp.read()
            status = resp.status
    return UploadRss(base, peak, mib * MIB, status)
