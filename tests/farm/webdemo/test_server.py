"""The site's server on real sockets: whatever the spelling of a path, only the page's own files
are served; a header flood is refused before the site holds it, and the page still loads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings

ROOT = Path(__file__).resolve().parents[3]
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    with SiteServer(tmp_path_factory.mktemp("site"), SiteSettings()) as running:
        yield running


def exchange(site: SiteServer, request: bytes) -> bytes:
    """Send raw `request` bytes over TLS and return everything the site answers until it closes."""
    context = ssl.create_default_context(cafile=str(site.cert))
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return answer


def get(site: SiteServer, target: str) -> bytes:
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return exchange(site, head.encode("latin-1"))


TRAVERSALS = [
    "/../pyproject.toml",
    "/../../../../etc/passwd",
    "/%2e%2e/pyproject.toml",
    "/%2E%2E/%2E%2E/pyproject.toml",
    "/%252e%252e/pyproject.toml",
    "/..%2fpyproject.toml",
    "/%2e%2e%2fpyproject.toml",
    "/app.js/../../pyproject.toml",
    "/vendor/../../relay/bridge/package.json",
    "/vendor/..%2f..%2frelay%2fbridge%2fpackage.json",
    "/..\\pyproject.toml",
    "/%5c..%5cpyproject.toml",
    "\\..\\pyproject.toml",
    "//etc/passwd",
    "/certs/site-key.pem",
    "/site/certs/site-key.pem",
    "/index.html%00.js",
    "/./README.md",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_spelling_of_a_path_reaches_a_file_off_the_list(site: SiteServer, target: str) -> None:
    answer = get(site, target)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 404), answer[:200]
    for secret in (b"PRIVATE KEY", b"[project]", b"root:", b"ollama-farm-nkn-bridge"):
        assert secret not in answer


def test_the_page_is_served_and_the_checkout_holds_what_the_attacks_aim_at(
    site: SiteServer,
) -> None:
    # Guards the test above: the files it tries to reach exist, and a plain GET works.
    assert b"[project]" in (ROOT / "pyproject.toml").read_bytes()
    answer = get(site, "/")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'src="/app.js"' in answer


async def flood(site: SiteServer, head: bytes, filler: bytes, total: int) -> tuple[bytes, int]:
    """Send `head`, then `filler` until `total` bytes went or the site answers: (status line,
    peak RSS growth of the site while it was offered the bytes)."""
    proc = psutil.Process(site.pid)
    before = proc.memory_info().rss
    peak = 0
    context = ssl.create_default_context(cafile=str(site.cert))
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port, ssl=context)

    async def offer() -> None:
        nonlocal peak
        sent = 0
        writer.write(head)
        while sent < total:
            writer.write(filler)
            await writer.drain()
            sent += len(filler)
            if sent % (8 * MiB) < len(filler):
                peak = max(peak, proc.memory_info().rss - before)

    offering = asyncio.create_task(offer())
    try:
        async with asyncio.timeout(30):
            status = await reader.readline()
    finally:
        offering.cancel()
        try:
            await offering
        except (asyncio.CancelledError, ConnectionError):
            pass
        writer.transport.abort()  # no TLS close handshake to wait for: the loop ends next
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return status, max(peak, proc.memory_info().rss - before)


@pytest.mark.parametrize(
    ("head", "filler", "total"),
    [
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ", b"a" * 65536, 200 * MiB),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Flood: 1\r\n" * 1000, 20_000 * 12),
    ],
    ids=["one-200-mb-line", "20000-headers"],
)
def test_a_header_flood_is_refused_before_the_site_holds_it_and_the_page_loads(
    site: SiteServer, head: bytes, filler: bytes, total: int
) -> None:
    # A loop of its own, in a thread: the browser tests' Playwright keeps one running here.
    with ThreadPoolExecutor(1) as thread:
        status, growth = thread.submit(asyncio.run, flood(site, head, filler, total)).result()
    assert status.startswith(b"HTTP/1.1 431 "), status
    assert growth < 20 * MiB
    assert get(site, "/").startswith(b"HTTP/1.1 200 ")
