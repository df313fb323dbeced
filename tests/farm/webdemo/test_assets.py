"""The resolver: the page from package data or the checkout, the nkn-sdk build, the cert folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.webdemo import assets
from farm.webdemo.app import PAGE_FILES
from farm.webdemo.errors import AssetMissingError

ROOT = Path(__file__).resolve().parents[3]


def test_a_checkout_serves_site_and_keeps_the_certificate_in_site_certs() -> None:
    found = assets.locate()
    assert found.page_dir == ROOT / "site"
    assert found.cert_dir == ROOT / "site" / "certs"
    for name, _ in PAGE_FILES.values():
        assert (found.page_dir / name).is_file(), name


def test_package_data_wins_and_keeps_the_certificate_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    monkeypatch.setattr(assets, "PACKAGED_PAGE_DIR", tmp_path)
    found = assets.locate()
    assert found.page_dir == tmp_path
    assert found.cert_dir == Path(".farm") / "site-certs"


def test_no_page_anywhere_is_an_error_naming_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assets, "PACKAGED_PAGE_DIR", tmp_path / "static")
    monkeypatch.setattr(assets, "CHECKOUT_PAGE_DIR", tmp_path / "site")
    with pytest.raises(AssetMissingError, match="static.*a wheel.*site.*a source checkout"):
        assets.locate()


def test_the_nkn_sdk_build_comes_from_the_relays_npm_packages_unless_given(
    tmp_path: Path,
) -> None:
    bridge = ROOT / "relay" / "bridge" / "node_modules" / "nkn-sdk" / "dist"
    assert assets.locate().nkn_sdk == bridge / "nkn.min.js"
    assert assets.locate(tmp_path).nkn_sdk == tmp_path / "nkn.min.js"


def test_a_missing_nkn_sdk_build_says_how_to_install_it(tmp_path: Path) -> None:
    found = assets.locate(tmp_path)
    assert found.nkn_sdk_problem is not None
    assert "npm ci --prefix relay/bridge" in found.nkn_sdk_problem
    (tmp_path / "nkn.min.js").write_text("window.nkn = {};")
    assert found.nkn_sdk_problem is None
