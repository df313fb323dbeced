"""nkn-mux.js and the NKN path's fast-path streams in the browser, fed relay.mux DMs directly:
order by message number, duplicates, gaps asked for again, keepalives, epochs, caps, resends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings

RELAY = "r." + "ab" * 32

# Runs in the page: a MuxInbox fed `frames` (relay.mux or relay.mux.keepalive); returns the
# numbers it delivered, in order, and every ack it sent once `acks` acks were sent.
INBOX = """async ([frames, acks]) => {
  const { MuxInbox } = await import("/nkn-mux.js");
  const seen = { delivered: [], acks: [] };
  const inbox = new MuxInbox({
    sendAck: (ack) => seen.acks.push(ack),
    deliver: (message) => seen.delivered.push(`${message.m}${message.n}`),
  });
  for (const frame of frames) {
    if (frame.event === "relay.mux") inbox.onMessage(frame);
    else inbox.onKeepalive(frame);
  }
  const deadline = performance.now() + 3000;
  while (seen.acks.length < acks && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  clearTimeout(inbox.timer);
  seen.stats = inbox.stats;
  return seen;
}"""

# Runs in the page: an NknRelay with a stub NKN client (no network) and the relay.info
# `info`; one stream is opened and gets `dms` from the relay, "$ID" standing for its id.
# Returns what the stub sent, the lines and frame kinds the sink saw, and how it ended.
STREAM = """async ([info, relay, dmsWithId, waitFor]) => {
  const { NknRelay } = await import("/nkn-path.js");
  const r = new NknRelay({ relay_address: relay, relay_ping_timeout_ms: 1000 }, () => {});
  const sent = [];
  const send = async (to, payload) => { sent.push(JSON.parse(payload)); };
  r.client = { send, close: async () => {} };
  r.connect = async () => {};
  r.info = info;
  const seen = { lines: [], kinds: [], end: "open" };
  const sink = {
    onLine: (line) => seen.lines.push(line),
    onFrame: (kind) => seen.kinds.push(kind),
    onEnd: (error) => { seen.end = error; },
  };
  const handle = await r.stream({ path: "/api/generate" }, sink);
  const until = async (test) => {
    const deadline = performance.now() + 4000;
    while (!test() && performance.now() < deadline) await new Promise((ok) => setTimeout(ok, 10));
  };
  const count = (event) => sent.filter((f) => f.event === event).length;
  if (waitFor === "resend") await until(() => count("relay.http") >= 2);
  if (waitFor === "cancel") {
    handle.cancel();
    await until(() => count("relay.cancel") >= 2);
  }
  const dms = JSON.parse(JSON.stringify(dmsWithId).replaceAll('"$ID"', JSON.stringify(handle.id)));
  for (const dm of dms) r._onMessage(relay, JSON.stringify(dm));
  await until(() => sent.some((f) => f.event === "relay.mux.ack") || !dms.length);
  r.watch.stop();
  clearTimeout(r.fast.inbox.timer);
  return { sent, seen, fast: handle.fast, stats: r.stats };
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    settings = SiteSettings(proxy_url="http://127.0.0.1:1")  # never called here
    with SiteServer(tmp_path_factory.mktemp("certs"), settings) as server:
        yield server


@pytest.fixture(scope="module")
def js_page(browser: Any, site: SiteServer) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(site.url + "config.json")
    yield page
    context.close()


def mux(n: int, m: str = "e", items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"event": "relay.mux", "m": m, "n": n, "ts": 0, "items": items or []}


def inbox(page: Page, frames: list[dict[str, Any]], acks: int) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(INBOX, [frames, acks])
    return result


def test_messages_are_delivered_once_in_number_order(js_page: Page) -> None:
    seen = inbox(js_page, [mux(2), mux(1), mux(1), mux(3), mux(2)], acks=1)
    assert seen["delivered"] == ["e1", "e2", "e3"]
    assert seen["stats"]["duplicates"] == 2
    # A duplicate means our last ack may be lost: acknowledge at once, cumulatively.
    assert seen["acks"][0] == {"event": "relay.mux.ack", "m": "e", "upto": 3, "missing": []}


def test_a_gap_is_asked_for_and_filled_by_the_resend(js_page: Page) -> None:
    seen = inbox(js_page, [mux(1), mux(4), mux(2)], acks=1)
    assert seen["delivered"] == ["e1", "e2"]  # 4 waits for 3
    assert seen["acks"][0]["upto"] == 2 and seen["acks"][0]["missing"] == [3]
    filled = inbox(js_page, [mux(1), mux(3), mux(2)], acks=1)
    assert filled["delivered"] == ["e1", "e2", "e3"]


def test_a_keepalive_reveals_a_lost_last_message(js_page: Page) -> None:
    keepalive = {"event": "relay.mux.keepalive", "m": "e", "last": 3, "ts": 0}
    seen = inbox(js_page, [mux(1), keepalive], acks=1)
    assert seen["acks"][0]["missing"] == [2, 3]


def test_a_page_new_to_an_epoch_starts_from_the_oldest_number_the_relay_keeps(
    js_page: Page,
) -> None:
    # An earlier page at this address acknowledged up to 56: the relay keeps 57 on.
    seen = inbox(js_page, [{**mux(58), "lo": 57}, {**mux(57), "lo": 57}], acks=1)
    assert seen["delivered"] == ["e57", "e58"]
    assert seen["acks"][0] == {"event": "relay.mux.ack", "m": "e", "upto": 58, "missing": []}


def test_a_new_epoch_starts_the_numbering_over(js_page: Page) -> None:
    seen = inbox(js_page, [mux(1, "a"), mux(2, "a"), mux(1, "b"), mux(2, "a")], acks=1)
    # Back to "a": a new numbering again, so its 2 waits for a 1.
    assert seen["delivered"] == ["a1", "a2", "b1"]
    assert seen["acks"][0] == {"event": "relay.mux.ack", "m": "a", "upto": 0, "missing": [1]}


def stream(
    page: Page, offers: list[str], dms: list[dict[str, Any]], wait_for: str = ""
) -> dict[str, Any]:
    info = {"event": "relay.info", "offers": offers}
    result: dict[str, Any] = page.evaluate(STREAM, [info, RELAY, dms, wait_for])
    return result


# Two messages, the second first, with a keepalive: accepted, begin, lines 1-3, end.
ID = "$ID"
FAST_DMS = [
    mux(
        2,
        items=[
            {"id": ID, "k": "lines", "seq": 2, "lines": ["L2", "L3"]},
            {
                "id": ID,
                "k": "end",
                "ok": True,
                "last_seq": 3,
                "lines": 3,
                "error": None,
                "begun": True,
            },
        ],
    ),
    {"event": "relay.mux.keepalive", "m": "e", "last": 2, "ts": 0},
    mux(
        1,
        items=[
            {"id": ID, "k": "accepted"},
            {"id": "other", "k": "lines", "seq": 1, "lines": ["X"]},
            {"id": ID, "k": "begin", "ok": True, "status": 200, "headers": {}},
            {"id": ID, "k": "lines", "seq": 1, "lines": ["L1"]},
        ],
    ),
    mux(2, items=[{"id": ID, "k": "lines", "seq": 2, "lines": ["L2"]}]),
]


def test_a_fast_path_stream_asks_with_caps_and_reads_its_items_in_order(js_page: Page) -> None:
    result = stream(js_page, ["mux/1"], FAST_DMS)
    request = result["sent"][0]
    assert request["event"] == "relay.http" and request["caps"] == ["mux/1"]
    assert result["fast"] is True
    assert result["seen"]["lines"] == ["L1", "L2", "L3"]
    assert result["seen"]["end"] is None
    assert result["seen"]["kinds"] == ["keepalive", "begin", "lines", "lines", "end"]
    assert result["stats"]["dmsIn"] == 4 and result["stats"]["linesIn"] == 3
    ack = next(f for f in result["sent"] if f["event"] == "relay.mux.ack")
    assert ack["upto"] == 2


def test_without_the_offer_the_stream_uses_the_seed_api(js_page: Page) -> None:
    result = stream(js_page, [], [])
    assert "caps" not in result["sent"][0]
    assert result["fast"] is False


def test_an_unanswered_fast_path_request_is_resent(js_page: Page) -> None:
    result = stream(js_page, ["mux/1"], [], wait_for="resend")
    requests = [f for f in result["sent"] if f["event"] == "relay.http"]
    assert len(requests) >= 2 and requests[0] == requests[1]


def test_a_fast_path_cancel_is_resent_until_the_end_arrives(js_page: Page) -> None:
    end = [mux(1, items=[{"id": ID, "k": "end", "ok": False, "error": "cancelled"}])]
    result = stream(js_page, ["mux/1"], end, wait_for="cancel")
    cancels = [f for f in result["sent"] if f["event"] == "relay.cancel"]
    assert len(cancels) >= 2
    assert result["seen"]["end"] == "cancelled"
