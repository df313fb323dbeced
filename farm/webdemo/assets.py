"""The resolver of the site's files: the page, nkn-sdk's browser build, the certificate folder.

Every path the site serves or writes comes from here, so that no other module reaches across
the tree by relative path, and the same code serves the page from a source checkout, an
editable install and an installed wheel:

- The page's source is the top-level `site/` folder. A wheel carries it as package data in
  `farm/webdemo/static/` (pyproject maps the package `farm.webdemo.static` onto `site/`);
  a checkout has no such folder, and neither has an editable install (setuptools' editable
  finder cannot map a folder without `__init__.py` into a regular package), so there the page
  is read from `site/` beside the `farm` package.
- The nkn-sdk browser build belongs to the relay's pinned npm packages (`npm ci --prefix
  relay/bridge`, locked by `relay/bridge/package-lock.json`), so it is never copied: a wheel
  carries it as package data of `relay.bridge`. `farm` and `relay` are one distribution and sit
  side by side in a checkout and in site-packages alike, so one relative place finds it in both.
  `--nkn-sdk-dir` overrides it.
- The self-signed certificate is kept in the checkout's `site/certs/` (git-ignored) and, for an
  installed wheel, in `.farm/site-certs/` under the current directory, beside the farm's own
  state: site-packages is no place for a private key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farm.webdemo.errors import AssetMissingError

_PACKAGE_DIR = Path(__file__).resolve().parent
#: The folder holding the `farm` and `relay` packages: the checkout, or site-packages.
_ROOT = _PACKAGE_DIR.parents[1]
PACKAGED_PAGE_DIR = _PACKAGE_DIR / "static"
CHECKOUT_PAGE_DIR = _ROOT / "site"
BRIDGE_NKN_SDK_DIR = _ROOT / "relay" / "bridge" / "node_modules" / "nkn-sdk" / "dist"
INSTALLED_CERT_DIR = Path(".farm") / "site-certs"
NKN_SDK_FILE = "nkn.min.js"
#: The file whose presence marks a folder as the page.
PAGE_MARKER = "index.html"


@dataclass(frozen=True, slots=True)
class SiteAssets:
    """Where the page's files are read from and the self-signed certificate is kept."""

    page_dir: Path
    nkn_sdk_dir: Path
    cert_dir: Path

    @property
    def nkn_sdk(self) -> Path:
        """The nkn-sdk browser build (it may be missing: see `nkn_sdk_problem`)."""
        return self.nkn_sdk_dir / NKN_SDK_FILE

    @property
    def nkn_sdk_problem(self) -> str | None:
        """Why the browser build of nkn-sdk cannot be served, or None when it can."""
        if self.nkn_sdk.is_file():
            return None
        return (
            f"nkn-sdk browser build not found at {self.nkn_sdk}; install the relay's pinned "
            "Node packages: npm ci --prefix relay/bridge (or point --nkn-sdk-dir at its dist/)"
        )


def locate(nkn_sdk_dir: Path | None = None) -> SiteAssets:
    """Find the page (package data first, then the checkout) and the nkn-sdk build.

    Raises AssetMissingError, naming both places, when neither holds the page.
    """
    for page_dir, cert_dir in (
        (PACKAGED_PAGE_DIR, INSTALLED_CERT_DIR),
        (CHECKOUT_PAGE_DIR, CHECKOUT_PAGE_DIR / "certs"),
    ):
        if (page_dir / PAGE_MARKER).is_file():
            return SiteAssets(page_dir, nkn_sdk_dir or BRIDGE_NKN_SDK_DIR, cert_dir)
    raise AssetMissingError(
        f"the demo page is not installed: no {PAGE_MARKER} in {PACKAGED_PAGE_DIR} (a wheel) "
        f"or {CHECKOUT_PAGE_DIR} (a source checkout)"
    )
