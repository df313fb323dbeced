"""The page in headless Chromium, streaming directly from the proxy in front of the simulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from farm.common.net import free_port
from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer
from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings
from tests.farm.webdemo.conftest import PageLog
from tests.farm.webdemo.pagedriver import (
    open_page,
    panes,
    start,
    stop_three_running_streams,
    summary_rate,
    wait_all_finished,
    wait_for_models,
)

MODEL = "gemma3:4b"


@dataclass
class Stack:
    sim: Any
    proxy: Any
    site: SiteServer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """sim (4 slots, ~25 tokens/s per stream) <- proxy (CORS for the site) <- site."""
    site_port = free_port()
    origin = f"https://127.0.0.1:{site_port}"
    with (
        SimServer(num_parallel=4, decode_ms=40, load_ms=0) as sim,
        ProxyServer(backends=[sim.url], cors_origins=[origin]) as proxy,
        SiteServer(
            tmp_path_factory.mktemp("certs"),
            SiteSettings(proxy_url=proxy.url, model=MODEL),
            port=site_port,
        ) as site,
    ):
        yield Stack(sim, proxy, site)


def test_three_direct_streams_show_text_ttft_and_aggregate_rate(
    stack: Stack, page: Page, page_log: PageLog, artifacts: Path
) -> None:
    open_page(page, stack.site.url)
    wait_for_models(page)
    expect(page.locator("#synthetic")).to_be_visible()  # the simulator is labelled as such
    start(page, streams="3", max_tokens="12")
    wait_all_finished(page, 3)
    shown = panes(page)
    assert [p["state"] for p in shown] == ["done"] * 3, shown
    for pane in shown:
        assert pane["text"].strip(), pane
        assert pane["ttft_ms"] is not None and "TTFT" in pane["stats"], pane
        assert "12 tok" in pane["stats"], pane
    assert summary_rate(page) > 0
    for cell in ("#sum-ttft-p50", "#sum-ttft-max"):
        assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", page.locator(cell).inner_text()), cell
    assert page.locator("#sum-done").inner_text() == "3 / 3"
    assert page.locator("#sum-errors").inner_text() == "0"
    expect(page.locator("#message")).to_contain_text("3 done, 0 error(s)")
    page.screenshot(path=str(artifacts / "site-direct.png"), full_page=True)
    assert page_log.errors == []


def test_stop_cancels_every_stream_and_frees_the_simulator_slots(
    stack: Stack, page: Page, page_log: PageLog
) -> None:
    open_page(page, stack.site.url)
    wait_for_models(page)
    stop_three_running_streams(page, stack.sim, free_within_s=10)
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    assert page_log.errors == []


BAD_INPUTS = [
    # Each message names the bad value, so a message left over from the case before can't pass.
    ("#streams", "0", 'Parallel streams must be a whole number from 1 to 32 (got "0").'),
    ("#streams", "33", 'Parallel streams must be a whole number from 1 to 32 (got "33").'),
    ("#streams", "2.5", 'Parallel streams must be a whole number from 1 to 32 (got "2.5").'),
    ("#max-tokens", "0", 'Max tokens must be a whole number from 1 to 8192 (got "0").'),
    ("#prompt", "   ", "The prompt is empty: type one or pick a preset."),
    ("#model", "no-such-model:7b", 'Unknown model "no-such-model:7b": the server lists gemma3:4b.'),
]


def test_bad_input_shows_a_message_and_sends_nothing(
    stack: Stack, page: Page, page_log: PageLog
) -> None:
    open_page(page, stack.site.url)
    wait_for_models(page)
    before = stack.sim.state()["requests"]["started"]
    for field, value, message in BAD_INPUTS:
        control = page.locator(field)
        good = control.input_value()
        control.fill(value)
        page.get_by_role("button", name="Start").click()
        expect(page.get_by_role("alert")).to_have_text(message)
        expect(page.locator(".pane")).to_have_count(0)
        control.fill(good)
    assert stack.sim.state()["requests"]["started"] == before
    assert page_log.errors == []


def test_a_backend_failure_mid_stream_shows_its_message_in_the_pane(
    tmp_path: Path, page: Page, page_log: PageLog, artifacts: Path
) -> None:
    site_port = free_port()
    origin = f"https://127.0.0.1:{site_port}"
    with (
        SimServer(num_parallel=2, decode_ms=10, load_ms=0, fail_after_tokens=3) as sim,
        ProxyServer(backends=[sim.url], cors_origins=[origin]) as proxy,
        SiteServer(
            tmp_path, SiteSettings(proxy_url=proxy.url, model=MODEL), port=site_port
        ) as site,
    ):
        open_page(page, site.url)
        wait_for_models(page)
        start(page, streams="2", max_tokens="50")
        wait_all_finished(page, 2)
        for pane in panes(page):
            assert pane["state"] == "error", pane
            # The simulator fails the way Ollama does; the pane shows the server's own words.
            assert "model runner has unexpectedly stopped" in pane["error"], pane
        assert page.locator("#sum-errors").inner_text() == "2"
        page.screenshot(path=str(artifacts / "site-direct-error.png"), full_page=True)
    assert page_log.errors == []
