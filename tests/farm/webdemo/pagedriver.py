"""Drives the demo page the way a person does (keyboard and clicks), for the browser tests."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

FINISHED = ".pane[data-state=done], .pane[data-state=error], .pane[data-state=cancelled]"


def open_page(page: Page, url: str) -> None:
    """Load the page and wait until it has listed the models."""
    page.goto(url)
    expect(page.locator("body[data-ready='1']")).to_have_count(1)


def wait_for_models(page: Page, timeout_ms: float = 20_000) -> None:
    """Wait until the model list came back from /api/tags (directly or over NKN)."""
    expect(page.locator("#models-note")).to_contain_text("model(s)", timeout=timeout_ms)


def start(page: Page, *, streams: str, max_tokens: str, prompt: str | None = None) -> None:
    """Fill the controls by keyboard and submit with Enter (implicit form submission)."""
    if prompt is not None:
        page.locator("#prompt").fill(prompt)
    page.locator("#max-tokens").fill(max_tokens)
    streams_input = page.locator("#streams")
    streams_input.fill(streams)
    streams_input.press("Enter")


def wait_all_finished(page: Page, count: int, timeout_ms: float = 30_000) -> None:
    """Wait until `count` panes exist and every one has reached a final state."""
    expect(page.locator(".pane")).to_have_count(count)
    expect(page.locator(FINISHED)).to_have_count(count, timeout=timeout_ms)


def panes(page: Page) -> list[dict[str, Any]]:
    """Each pane as the user reads it: state, text, stats line, error line, TTFT (ms)."""
    result = []
    for pane in page.locator(".pane").all():
        ttft = pane.get_attribute("data-ttft-ms") or ""
        result.append(
            {
                "state": pane.get_attribute("data-state"),
                "text": pane.locator(".text").inner_text(),
                "stats": pane.locator(".stats").inner_text(),
                "error": pane.locator(".error").inner_text(),
                "ttft_ms": int(ttft) if ttft else None,
            }
        )
    return result


def summary_rate(page: Page) -> float:
    """The summary's aggregate tokens/s, as a number (fails if it shows none)."""
    text = page.locator("#sum-rate").inner_text()
    assert re.fullmatch(r"\d+(\.\d+)?", text), f"no aggregate tokens/s shown: {text!r}"
    return float(text)


def active_slots(state: dict[str, Any]) -> int:
    """Slots the simulator holds for running requests, over all models (`/_sim/state`)."""
    return sum(model["active"] for model in state["models"].values())


def stop_three_running_streams(page: Page, sim: Any, free_within_s: float) -> None:
    """Start 3 long streams, wait until the simulator runs all 3, press Stop; then every pane
    must say cancelled and the simulator must free every slot within `free_within_s`."""
    start(page, streams="3", max_tokens="2000")
    expect(page.locator(".pane[data-state=streaming]")).to_have_count(3, timeout=20_000)
    sim.wait_for(lambda state: active_slots(state) == 3, timeout=10)
    page.get_by_role("button", name="Stop").click()
    wait_all_finished(page, 3)
    assert [p["state"] for p in panes(page)] == ["cancelled"] * 3
    sim.wait_for(lambda state: active_slots(state) == 0, timeout=free_within_s)
