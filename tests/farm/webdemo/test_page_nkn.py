"""The page in headless Chromium over NKN: its own nkn-sdk client, the local NKN test node,
the relay, the proxy and the simulator."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer
from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings
from relay.localnode.child import LocalNode
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
from tests.farm.webdemo.relay_process import RelayProcess, nkn_address

MODEL = "gemma3:4b"
PEER_LIMIT = 3  # requests one peer may have at the relay; more are refused as busy
BRIDGE = Path(__file__).resolve().parents[3] / "relay" / "bridge" / "node_modules" / "nkn-sdk"

pytestmark = pytest.mark.skipif(
    not BRIDGE.is_dir(), reason="relay's Node packages missing: npm ci --prefix relay/bridge"
)


@dataclass
class NknStack:
    sim: Any
    proxy: Any
    node: LocalNode
    relay: RelayProcess
    site: SiteServer


@pytest.fixture(scope="module")
def nkn_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NknStack]:
    """sim <- proxy <- relay <-NKN (local test node)-> the page's own nkn-sdk client."""
    with (
        SimServer(num_parallel=4, decode_ms=40, load_ms=0) as sim,
        ProxyServer(backends=[sim.url]) as proxy,
        LocalNode() as node,
    ):
        relay = RelayProcess(
            tmp_path_factory.mktemp("relay"),
            node.rpc_url,
            {"ollama": proxy.url},
            {"RELAY_WORKERS": "8", "RELAY_PEER_LIMIT": str(PEER_LIMIT)},
        ).start()
        try:
            relay.wait_registered(node.state, timeout=30)
            site = SiteServer(
                tmp_path_factory.mktemp("certs"),
                SiteSettings(
                    proxy_url=proxy.url,
                    relay_address=relay.address,
                    nkn_rpc=node.rpc_url,
                    model=MODEL,
                ),
            )
            with site:
                yield NknStack(sim, proxy, node, relay, site)
        finally:
            relay.stop()


def choose_nkn(page: Page) -> None:
    """Pick the NKN path with the keyboard and wait for the models listed over NKN."""
    page.get_by_label("Over NKN through the relay").check()
    wait_for_models(page, timeout_ms=30_000)
    expect(page.locator("#nkn-status")).to_contain_text("answered")


def test_three_streams_over_nkn_show_text_ttft_and_frame_counts(
    nkn_stack: NknStack, page: Page, page_log: PageLog, artifacts: Path
) -> None:
    open_page(page, nkn_stack.site.url)
    choose_nkn(page)
    start(page, streams="3", max_tokens="12")
    wait_all_finished(page, 3)
    shown = panes(page)
    assert [p["state"] for p in shown] == ["done"] * 3, shown
    for pane in shown:
        assert pane["text"].strip(), pane
        assert pane["ttft_ms"] is not None, pane
        frames = re.search(r"(\d+) frames", pane["stats"])
        # begin + at least one batch of lines + end
        assert frames is not None and int(frames.group(1)) >= 3, pane
    assert summary_rate(page) > 0
    assert re.fullmatch(r"\d+ / \d+", page.locator("#sum-frames").inner_text())
    page.screenshot(path=str(artifacts / "site-nkn.png"), full_page=True)
    assert page_log.errors == []


def test_stop_over_nkn_sends_relay_cancel_and_frees_the_simulator_slots(
    nkn_stack: NknStack, page: Page, page_log: PageLog
) -> None:
    open_page(page, nkn_stack.site.url)
    choose_nkn(page)
    # Only relay.cancel can free the slots: the page holds no HTTP connection to the proxy.
    stop_three_running_streams(page, nkn_stack.sim, free_within_s=15)
    assert page_log.errors == []


def test_a_relay_nobody_answers_for_is_reported_and_nothing_is_sent(
    nkn_stack: NknStack, page: Page, page_log: PageLog, tmp_path: Path
) -> None:
    absent = nkn_address(os.urandom(32).hex())
    before = nkn_stack.sim.state()["requests"]["started"]
    rpc, proxy_url = nkn_stack.node.rpc_url, nkn_stack.proxy.url
    settings = SiteSettings(
        proxy_url=proxy_url, relay_address=absent, nkn_rpc=rpc, relay_ping_timeout=2
    )
    site = SiteServer(tmp_path, settings)
    with site:
        open_page(page, site.url)
        page.get_by_label("Over NKN through the relay").check()
        expect(page.locator("#nkn-status")).to_contain_text("relay unreachable", timeout=20_000)
        page.get_by_role("button", name="Start").click()
        expect(page.get_by_role("alert")).to_contain_text("relay unreachable")
        expect(page.locator(".pane")).to_have_count(0)
    assert nkn_stack.sim.state()["requests"]["started"] == before
    assert page_log.errors == []


@contextmanager
def site_for_relay(
    stack: NknStack, workdir: Path, settings: dict[str, str]
) -> Iterator[SiteServer]:
    """A second relay with `settings` on the same node and proxy, and a site pointing at it."""
    relay = RelayProcess(workdir, stack.node.rpc_url, {"ollama": stack.proxy.url}, settings)
    relay.start()
    try:
        relay.wait_registered(stack.node.state, timeout=30)
        site_settings = SiteSettings(
            proxy_url=stack.proxy.url,
            relay_address=relay.address,
            nkn_rpc=stack.node.rpc_url,
            model=MODEL,
        )
        with SiteServer(workdir, site_settings) as site:
            yield site
    finally:
        relay.stop()


def test_a_relay_that_forbids_this_peer_says_so_and_nothing_is_sent(
    nkn_stack: NknStack, page: Page, page_log: PageLog, tmp_path: Path
) -> None:
    before = nkn_stack.sim.state()["requests"]["started"]
    someone_else = nkn_address(os.urandom(32).hex())
    with site_for_relay(nkn_stack, tmp_path, {"RELAY_ALLOWED_PEERS": someone_else}) as site:
        open_page(page, site.url)
        page.get_by_label("Over NKN through the relay").check()
        expect(page.locator("#nkn-status")).to_contain_text("relay refused: forbidden")
        page.get_by_role("button", name="Start").click()
        expect(page.get_by_role("alert")).to_contain_text("forbidden")
        expect(page.locator(".pane")).to_have_count(0)
    assert nkn_stack.sim.state()["requests"]["started"] == before
    assert page_log.errors == []


def test_more_streams_than_the_relays_per_peer_limit_are_refused_before_any_is_sent(
    nkn_stack: NknStack, page: Page, page_log: PageLog
) -> None:
    before = nkn_stack.sim.state()["requests"]["started"]
    open_page(page, nkn_stack.site.url)
    choose_nkn(page)
    start(page, streams=str(PEER_LIMIT + 2), max_tokens="12")
    expect(page.get_by_role("alert")).to_contain_text(
        f"The relay admits at most {PEER_LIMIT} streams from one page"
    )
    expect(page.locator(".pane")).to_have_count(0)
    assert nkn_stack.sim.state()["requests"]["started"] == before
    assert page_log.errors == []
