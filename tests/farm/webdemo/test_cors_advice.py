"""The direct path's CORS advice names flags that exist: `invoke up --cors-origins` reaches the
farm's proxy, and a page whose origin the proxy does not allow says to use it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from farm.launch.proxy_process import proxy_settings
from farm.launch.settings import UpSettings
from farm.proxy.child import ProxyServer
from farm.settings import load
from farm.sim.child import SimServer
from farm.webdemo.child import SiteServer
from farm.webdemo.settings import SiteSettings


def test_invoke_ups_cors_origins_flag_is_handed_to_the_proxy() -> None:
    argv = ["--model", "gemma3:4b", "--cors-origins", "https://a.example"]
    up = load(UpSettings, [*argv, "--cors-origins", "https://b.example"], {}).settings
    proxy = proxy_settings(up, ["http://127.0.0.1:11434"])
    assert proxy.cors_origins == ("https://a.example", "https://b.example")
    default = load(UpSettings, argv[:2], {}).settings
    assert proxy_settings(default, ["http://127.0.0.1:11434"]).cors_origins == ()


def test_a_page_the_proxy_does_not_allow_is_told_the_flag_that_fixes_it(
    tmp_path: Path, page: Page
) -> None:
    with (
        SimServer(num_parallel=1, load_ms=0) as sim,
        ProxyServer(backends=[sim.url], cors_origins=["https://elsewhere.example"]) as proxy,
        SiteServer(tmp_path, SiteSettings(proxy_url=proxy.url)) as site,
    ):
        page.goto(site.url)
        origin = site.url.rstrip("/")
        note = page.locator("#models-note")
        expect(note).to_contain_text("does its proxy allow this page's origin?")
        expect(note).to_contain_text(f"invoke up --cors-origins {origin}")
        expect(note).to_contain_text(f"python -m farm.proxy --cors-origins {origin}")
