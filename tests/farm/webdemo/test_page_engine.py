"""The page in headless Chromium against the proxy in front of the real llama.cpp engine.

The text is the model's (two streams in one batch change each other's output): only its
presence is asserted. The model loads once for this module (about 2 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from farm.common.net import free_port
from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer
from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings
from tests.farm.sim.engines.conftest import LOAD_TIMEOUT_S, MODEL, PARALLEL
from tests.farm.webdemo.conftest import PageLog
from tests.farm.webdemo.pagedriver import (
    open_page,
    panes,
    start,
    wait_all_finished,
    wait_for_models,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    """engine sim (model loaded) <- proxy (CORS for the site) <- site."""
    site_port = free_port()
    origin = f"https://127.0.0.1:{site_port}"
    with SimServer(engine="llamacpp", num_parallel=PARALLEL, context_length=512) as sim:
        sim.wait_for(lambda s: s["engine"]["ready"], timeout=LOAD_TIMEOUT_S)
        with (
            ProxyServer(backends=[sim.url], cors_origins=[origin]) as proxy,
            SiteServer(
                tmp_path_factory.mktemp("certs"),
                SiteSettings(proxy_url=proxy.url, model=MODEL),
                port=site_port,
            ) as server,
        ):
            yield server


def test_the_page_names_the_real_engine_and_streams_its_answers(
    site: SiteServer, page: Page, page_log: PageLog, artifacts: Path
) -> None:
    open_page(page, site.url)
    wait_for_models(page)
    expect(page.locator("#engine")).to_be_visible()
    expect(page.locator("#engine")).to_contain_text("engine: ")
    expect(page.locator("#engine")).to_contain_text("llama.cpp")
    expect(page.locator("#synthetic")).to_be_hidden()  # real weights answer, no banner
    start(page, streams="2", max_tokens="12", prompt="The capital of France is")
    wait_all_finished(page, 2, timeout_ms=60_000)
    shown = panes(page)
    assert [p["state"] for p in shown] == ["done"] * 2, shown
    for pane in shown:
        assert pane["text"].strip(), pane
        assert pane["ttft_ms"] is not None and "TTFT" in pane["stats"], pane
    expect(page.locator("#message")).to_contain_text("2 done, 0 error(s)")
    page.screenshot(path=str(artifacts / "site-engine.png"), full_page=True)
    assert page_log.errors == []
