"""nkn-path.js in the browser, fed relay frames directly: reorder by seq, loss, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings

# Runs in the page: build an NknRelay without a network, open one stream's frame handler and
# feed it `frames`; return the lines the sink saw, in order, and how the stream ended.
FEED = """async (frames) => {
  const { NknRelay } = await import("/nkn-path.js");
  const relay = new NknRelay({ relay_address: "r." + "ab".repeat(32) }, () => {});
  const seen = { lines: [], kinds: [], end: undefined };
  const sink = {
    onLine: (line) => seen.lines.push(line),
    onFrame: (kind) => seen.kinds.push(kind),
    onEnd: (error) => { seen.end = error; },
  };
  const state = { nextSeq: 1, held: new Map(), begun: false, ended: false };
  const finish = (error) => { if (!state.ended) { state.ended = true; sink.onEnd(error); } };
  for (const frame of frames) relay._onStreamFrame(frame, state, sink, finish);
  return seen;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    # The page is only loaded for its modules here; the proxy is never called.
    settings = SiteSettings(proxy_url="http://127.0.0.1:1")
    with SiteServer(tmp_path_factory.mktemp("certs"), settings) as server:
        yield server


@pytest.fixture(scope="module")
def js_page(browser: Any, site: SiteServer) -> Iterator[Page]:
    """One page on the site's origin, shared: every feed builds its own objects."""
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(site.url + "config.json")
    yield page
    context.close()


def feed(page: Page, frames: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(FEED, frames)
    return result


def lines(*seqs: int) -> dict[str, Any]:
    return {
        "event": "relay.response.lines",
        "id": "x",
        "lines": [{"seq": s, "ts": 0, "line": f"L{s}"} for s in seqs],
    }


BEGIN = {"event": "relay.response.begin", "id": "x", "ok": True, "status": 200, "headers": {}}


def end(last_seq: int, ok: bool = True, error: str | None = None) -> dict[str, Any]:
    frame = {"event": "relay.response.end", "id": "x", "ok": ok, "last_seq": last_seq}
    return {**frame, "error": error}


def test_lines_arriving_out_of_order_are_delivered_by_seq(js_page: Page) -> None:
    seen = feed(js_page, [BEGIN, lines(3, 4), lines(1), lines(2, 3), end(4)])
    assert seen["lines"] == ["L1", "L2", "L3", "L4"]
    assert seen["end"] is None
    assert seen["kinds"] == ["begin", "lines", "lines", "lines", "end"]


def test_a_missing_seq_is_reported_as_a_cut_stream(js_page: Page) -> None:
    seen = feed(js_page, [BEGIN, lines(1), lines(3), end(3)])
    assert seen["lines"] == ["L1"]
    assert seen["end"] == "stream cut: 2 line(s) lost in transit (got 1 of 3)"


@pytest.mark.parametrize("error", ["busy", "forbidden", "cancelled", "upstream: boom"])
def test_a_failed_end_reports_the_relays_error(js_page: Page, error: str) -> None:
    seen = feed(js_page, [end(0, ok=False, error=error)])
    assert seen["end"] == error


def test_keepalives_are_counted_as_frames(js_page: Page) -> None:
    keepalive = {"event": "relay.response.keepalive", "id": "x", "ts": 1}
    seen = feed(js_page, [BEGIN, keepalive, keepalive, lines(1), end(1)])
    assert seen["kinds"].count("keepalive") == 2
    assert seen["end"] is None
