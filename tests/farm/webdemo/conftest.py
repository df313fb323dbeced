"""Fixtures for the demo site's tests: one headless Debian Chromium per session, a page per test
that records console errors, and the simulator + proxy stack the page streams from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class PageLog:
    """What the page said on its console; tests assert it stayed free of errors."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium (.ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser: object, page_log: PageLog) -> Iterator[object]:
    """A fresh page (laptop-sized) that accepts the self-signed certificate."""
    context = browser.new_context(  # type: ignore[attr-defined]
        ignore_https_errors=True, viewport={"width": 1366, "height": 900}
    )
    new_page = context.new_page()
    new_page.on(
        "console", lambda msg: page_log.errors.append(msg.text) if msg.type == "error" else None
    )
    new_page.on("pageerror", lambda exc: page_log.errors.append(f"uncaught: {exc}"))
    yield new_page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
