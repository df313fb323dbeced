"""`python -m farm.webdemo`: serve the demo page over HTTPS (default https://127.0.0.1:8443/)."""

from __future__ import annotations

import logging
import sys

from farm.settings import Loaded, run_main
from farm.webdemo.assets import locate
from farm.webdemo.errors import SiteError
from farm.webdemo.server import prepare_certificate, serve
from farm.webdemo.settings import SiteSettings


def _serve(loaded: Loaded[SiteSettings]) -> int:
    """Find the page, make or check the certificate, print the URL and serve."""
    settings = loaded.settings
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        assets = locate(settings.nkn_sdk_dir)
        cert, key = prepare_certificate(settings, assets.cert_dir)
    except SiteError as exc:
        sys.stderr.write(f"{SiteSettings.prog}: error: {exc}\n")
        return 2
    # The one line users look for; flushed so wrappers reading our stdout see it at once.
    print(f"ollama-farm demo site: {settings.url}", flush=True)
    serve(settings, assets, cert, key)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Load the settings (flags > FARM_SITE_* > defaults) and serve until stopped."""
    return run_main(SiteSettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
