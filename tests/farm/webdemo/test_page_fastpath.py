"""The page over NKN on the relay's fast path (mux/1), in headless Chromium through the real
relay and the local NKN node: exact text in far fewer DMs, the seed API from a relay without
the fast path, exact streams through a node that drops, duplicates, delays and reorders, and
Stop freeing the simulator's slots."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ollama
import pytest
from playwright.sync_api import Page, expect

from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer
from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings
from relay.localnode.child import LocalNode
from relay.localnode.settings import LocalNodeSettings
from tests.farm.webdemo.conftest import PageLog
from tests.farm.webdemo.pagedriver import (
    open_page,
    start,
    stop_three_running_streams,
    wait_all_finished,
    wait_for_models,
)
from tests.farm.webdemo.relay_process import RelayProcess, nkn_address
from tests.farm.webdemo.test_page_nkn import BRIDGE

MODEL = "gemma3:4b"
STREAMS = 9
TOKENS = 60
PROMPT = "Why do farms keep one model warm?"
RELAY = {"RELAY_WORKERS": "10", "RELAY_PEER_LIMIT": "10", "RELAY_KEEPALIVE_S": "1"}
# Both ways around the relay. The page's and the relay's MultiClients send each DM over every
# sub-client, so a DM is lost only when all its copies are: the rates are high on purpose.
FAULTS = {
    f"fault_{way}_{kind}": rate
    for way in ("to", "from")
    for kind, rate in (("drop", 0.3), ("duplicate", 0.1), ("delay", 0.1), ("reorder", 0.2))
}
DMS = re.compile(
    r"(fast path \(mux/1\)|seed API) · (\d+) DMs? for (\d+) lines?(?: · (\d+) resends? asked)?"
)

pytestmark = pytest.mark.skipif(
    not BRIDGE.is_dir(), reason="relay's Node packages missing: npm ci --prefix relay/bridge"
)


@dataclass
class Farm:
    sim: Any
    proxy: Any
    node: LocalNode
    expected: str  # the answer to PROMPT straight from the proxy (the direct path)
    tokens: int  # ... and its eval_count


@pytest.fixture(scope="module")
def farm() -> Iterator[Farm]:
    with (
        SimServer(num_parallel=STREAMS, decode_ms=20, load_ms=0) as sim,
        ProxyServer(backends=[sim.url]) as proxy,
        LocalNode() as node,
        ollama.Client(host=proxy.url) as direct,
    ):
        answer = direct.generate(model=MODEL, prompt=PROMPT, options={"num_predict": TOKENS})
        assert answer.response and answer.eval_count
        yield Farm(sim, proxy, node, answer.response, answer.eval_count)


@contextmanager
def relay_site(
    farm: Farm, node: LocalNode, workdir: Path, settings: dict[str, str], seed: str | None = None
) -> Iterator[SiteServer]:
    """A relay with `settings` (and NKN seed `seed`) on `node`, and a site for it."""
    extra = {"NKN_SEED_HEX": seed} if seed else {}
    relay = RelayProcess(workdir, node.rpc_url, {"ollama": farm.proxy.url}, settings | extra)
    if seed:
        relay.seed_hex, relay.address = seed, nkn_address(seed)
    relay.start()
    try:
        relay.wait_registered(node.state, timeout=30)
        site_settings = SiteSettings(
            proxy_url=farm.proxy.url, relay_address=relay.address, nkn_rpc=node.rpc_url, model=MODEL
        )
        with SiteServer(workdir, site_settings) as site:
            yield site
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def fast_site(farm: Farm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    with relay_site(farm, farm.node, tmp_path_factory.mktemp("fast"), RELAY) as site:
        yield site


def choose_nkn(page: Page, path_text: str) -> None:
    page.get_by_label("Over NKN through the relay").check()
    expect(page.locator("#nkn-status")).to_contain_text("answered", timeout=30_000)
    expect(page.locator("#nkn-status")).to_contain_text(path_text)
    wait_for_models(page, timeout_ms=30_000)


def run_nine(page: Page) -> list[dict[str, Any]]:
    """Run STREAMS streams of PROMPT; each pane's state, exact text and stats line."""
    start(page, streams=str(STREAMS), max_tokens=str(TOKENS), prompt=PROMPT)
    try:
        expect(page.locator(".pane")).to_have_count(STREAMS)
    except AssertionError:  # refused before any stream: say why
        raise AssertionError(f"no panes: {page.locator('#message').inner_text()!r}") from None
    wait_all_finished(page, STREAMS, timeout_ms=60_000)
    shown: list[dict[str, Any]] = page.locator(".pane").evaluate_all(
        """panes => panes.map(p => ({
          state: p.dataset.state, ttft: p.dataset.ttftMs,
          text: p.querySelector(".text").textContent,
          stats: p.querySelector(".stats").textContent,
          error: p.querySelector(".error").textContent }))"""
    )
    return shown


def dms_shown(page: Page) -> tuple[str, int, int, int]:
    """The summary's path, DMs received, lines they carried and resends the page asked for."""
    match = DMS.fullmatch(page.locator("#sum-dms").inner_text())
    assert match, page.locator("#sum-dms").inner_text()
    path, dms, lines, asks = match.groups()
    return path, int(dms), int(lines), int(asks or 0)


def assert_exact(shown: list[dict[str, Any]], farm: Farm) -> None:
    assert [p["state"] for p in shown] == ["done"] * STREAMS, shown
    for pane in shown:
        assert pane["text"] == farm.expected, pane
        assert pane["ttft"], pane
        assert re.search(
            rf"{farm.tokens} tokens · \d+(\.\d+)? tok/s · \d+ frames", pane["stats"]
        ), pane


def test_nine_fast_path_streams_show_the_direct_text_in_far_fewer_dms_than_lines(
    farm: Farm, fast_site: SiteServer, page: Page, page_log: PageLog
) -> None:
    open_page(page, fast_site.url)
    choose_nkn(page, "fast path (mux/1)")
    assert_exact(run_nine(page), farm)
    path, dms, lines, asks = dms_shown(page)
    assert path == "fast path (mux/1)"
    assert lines == STREAMS * (farm.tokens + 1)  # every token's line and each stream's final one
    assert dms * 5 <= lines, (dms, lines)
    assert asks == 0  # a perfect network: nothing to repair
    assert page_log.errors == []


def test_a_relay_without_the_fast_path_gets_the_seed_api(
    farm: Farm, page: Page, page_log: PageLog, tmp_path: Path
) -> None:
    with relay_site(farm, farm.node, tmp_path, RELAY | {"RELAY_FAST_PATH": "0"}) as site:
        open_page(page, site.url)
        choose_nkn(page, "seed API")
        assert_exact(run_nine(page), farm)
        path, dms, lines, asks = dms_shown(page)
    assert path == "seed API"
    assert lines == STREAMS * (farm.tokens + 1)
    assert dms > 0
    assert page_log.errors == []


def test_fast_path_streams_through_a_faulty_node_are_exact(
    farm: Farm, page: Page, page_log: PageLog, tmp_path: Path
) -> None:
    seed = os.urandom(32).hex()
    settings = LocalNodeSettings(subject_key=nkn_address(seed), fault_seed=3, **FAULTS)
    faulty = RELAY | {"RELAY_MUX_RTO_MS": "300"}
    with (
        LocalNode(settings=settings) as node,
        relay_site(farm, node, tmp_path, faulty, seed) as site,
    ):
        open_page(page, site.url)
        choose_nkn(page, "fast path (mux/1)")
        assert_exact(run_nine(page), farm)
        traffic = node.state()["traffic"]
    # The node did lose messages both ways, and still no line is missing or doubled.
    assert traffic["from"]["dropped"] and traffic["to"]["dropped"], traffic
    _, _, lines, asks = dms_shown(page)
    assert lines == STREAMS * (farm.tokens + 1)
    assert asks > 0  # the page asked the relay for what the node lost
    assert page_log.errors == []


def test_stop_on_the_fast_path_frees_the_simulator_slots(
    farm: Farm, fast_site: SiteServer, page: Page, page_log: PageLog
) -> None:
    open_page(page, fast_site.url)
    choose_nkn(page, "fast path (mux/1)")
    stop_three_running_streams(page, farm.sim, free_within_s=15)
    assert page_log.errors == []
