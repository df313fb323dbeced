"""The page's pure logic in the browser, fed exact inputs: the chart's rate window, the TTFT
summary with provisional waits, each stream's estimated phase, and the relay-room texts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings


@pytest.fixture(scope="module")
def js_page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One page on a site's origin, loaded only for its modules (the proxy is never called)."""
    settings = SiteSettings(proxy_url="http://127.0.0.1:1")
    with SiteServer(tmp_path_factory.mktemp("certs"), settings) as site:
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.goto(site.url + "config.json")
        yield page
        context.close()


def run(page: Page, module: str, body: str, arg: Any = None) -> Any:
    """Evaluate `body` (an expression over `m`, the imported module, and `arg`) in the page."""
    return page.evaluate(
        f"async (arg) => {{ const m = await import('/{module}'); return {body}; }}", arg
    )


@pytest.mark.parametrize(
    ("arrivals", "now", "expected"),
    [
        ([10, 20, 30, 40, 50], 250, 20),  # 0.25 s into the run: 5 tokens over 0.25 s, not 1 s
        ([100, 600, 1100, 1600], 2000, 2),  # a full 1 s window: 1100 and 1600
        ([], 0, 0),
    ],
    ids=["early", "full-window", "nothing-yet"],
)
def test_the_chart_rate_counts_the_time_actually_elapsed(
    js_page: Page, arrivals: list[int], now: int, expected: float
) -> None:
    assert run(js_page, "measure.js", f"m.windowRate(arg, {now}, 0, 1000)", arrivals) == expected


# Records as the summary and the phases read them; times in ms from the run's start at 0.
def rec(ttft: float | None = None, finished: bool = False, frames: int = 0) -> dict[str, Any]:
    return {
        "startedMs": 0,
        "ttftMs": ttft,
        "firstTokenMs": ttft,
        "finished": finished,
        "frames": frames,
    }


def test_streams_still_waiting_count_as_their_wait_so_far(js_page: Page) -> None:
    records = [rec(50), rec(60), rec(None), rec(None), rec(None, finished=True)]
    summary = run(js_page, "measure.js", "m.ttftSummary(arg, 2700)", records)
    # 50, 60, 2700, 2700: the run so far is no better than 2.7 s at its worst; the stream that
    # ended without a token is left out.
    assert summary == {"p50Ms": 1380, "maxMs": 2700, "provisional": 2, "counted": 4}


PHASES = [
    # (records, options, expected phases in order; None for a finished record)
    (
        [rec(10), rec(12), rec(None), rec(None), rec(None), rec(None)],
        {"path": "nkn", "slots": 4, "relayWorkers": 8},
        ["streaming", "streaming", "prefilling", "prefilling", "queued-farm", "queued-farm"],
    ),
    (
        [rec(10, frames=2), rec(None), rec(None)],
        {"path": "nkn", "slots": 4, "relayWorkers": 1},
        ["streaming", "queued-relay", "queued-relay"],
    ),
    (
        [rec(10, finished=True)] + [rec(None) for _ in range(7)],
        {"path": "direct", "slots": 4, "relayWorkers": None},
        [None] + ["prefilling"] * 4 + ["queued-farm", "queued-farm", "queued-browser"],
    ),
    (
        [rec(None), rec(None)],
        {"path": "direct", "slots": None, "relayWorkers": None},
        ["waiting", "waiting"],
    ),
]


@pytest.mark.parametrize(
    ("records", "options", "expected"),
    PHASES,
    ids=["farm-queue", "relay-queue", "browser-queue", "slots-unknown"],
)
def test_each_stream_gets_the_phase_the_slots_and_workers_allow(
    js_page: Page, records: list[dict[str, Any]], options: dict[str, Any], expected: list[Any]
) -> None:
    body = (
        "(() => { const p = m.assignPhases(arg.records, arg.options);"
        " return arg.records.map((r) => p.get(r) ?? null); })()"
    )
    assert run(js_page, "phases.js", body, {"records": records, "options": options}) == expected


def test_a_run_past_the_relays_room_is_named_with_the_number(js_page: Page) -> None:
    texts = run(
        js_page,
        "models.js",
        "[m.relayRoomProblem({peer_limit: 10}, 16), m.relayRoomProblem({peer_limit: 10}, 10),"
        " m.relayRoomProblem(null, 16), m.busyText('busy', {peer_limit: 10}),"
        " m.busyText('x', null)]",
    )
    assert texts[0].startswith("The relay admits at most 10 streams from one page at a time")
    assert texts[1:3] == [None, None]
    assert texts[3] == (
        "busy: the relay's admission room is full "
        "(it admits 10 streams per page, fewer while other peers use it)"
    )
    assert texts[4] == "x"


# Runs in the page: a RelayWatch with a 300 ms silence limit; the relay "answers" (heard())
# every 50 ms for `aliveMs`, then falls silent. One request got a frame at the start (a stream),
# the other none (queued at the relay). Resolves with the order in which they were lost.
WATCH = """async ({ aliveMs }) => {
  const { RelayWatch } = await import("/liveness.js");
  const changes = [];
  const onChange = (silent) => changes.push(silent);
  const watch = new RelayWatch({ silenceMs: 300, sendPing: () => {}, onChange });
  const order = [];
  let aliveOver = false;
  const done = new Promise((resolve) => {
    const lost = (name) => (message) => {
      order.push({ name, message, relaySilentYet: aliveOver });
      if (order.length === 2) resolve();
    };
    watch.watch(lost("queued"));
    watch.frame(watch.watch(lost("streaming")));
  });
  watch.start();
  const beat = setInterval(() => { if (!aliveOver) watch.heard(); }, 50);
  setTimeout(() => { aliveOver = true; }, aliveMs);
  const deadline = new Promise((resolve) => setTimeout(resolve, aliveMs + 5000));
  await Promise.race([done, deadline]);
  clearInterval(beat);
  watch.stop();
  return { order, changes };
}"""


def test_a_queued_request_lives_while_the_relay_answers_and_a_stream_needs_its_own_frames(
    js_page: Page,
) -> None:
    seen = js_page.evaluate(WATCH, {"aliveMs": 1500})
    message = "lost: no data from the relay for 0.3 s"
    # The stream went quiet while the relay still answered; the queued request lived on until
    # the relay itself fell silent, which was reported once.
    assert seen["order"] == [
        {"name": "streaming", "message": message, "relaySilentYet": False},
        {"name": "queued", "message": message, "relaySilentYet": True},
    ]
    assert seen["changes"] == [True]


def test_a_relay_keepalive_longer_than_the_silence_limit_is_warned_about(js_page: Page) -> None:
    texts = run(
        js_page,
        "nkn-path.js",
        "(() => { const r = new m.NknRelay({relay_address: 'x', relay_silence_ms: 3000}, () => {});"
        " r.info = {workers: 4, peer_limit: 10, keepalive_ms: 10000}; const warn = r._infoText();"
        " r.info.keepalive_ms = 1000; return [warn, r._infoText()]; })()",
    )
    assert texts[0].startswith(" (4 workers, admits 10 streams per page). Warning: its keepalive")
    assert "raise --relay-silence" in texts[0]
    assert texts[1] == " (4 workers, admits 10 streams per page)"
