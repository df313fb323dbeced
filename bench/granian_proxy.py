"""The proxy app served by granian instead of uvicorn, for the proxy benchmark's server comparison.

`python -m bench.granian_proxy --interface asgi|rsgi --backend URL ...` serves
`farm.proxy.app.create_app(settings)` unchanged on granian (a Rust HTTP server): through its
ASGI interface, or through RSGI with `bench.rsgi_adapter` translating RSGI calls into the ASGI
messages the app speaks. `GranianProxyServer` runs it as a child process, like
`farm.proxy.child.ProxyServer` runs the real one. granian is imported only when serving, so the
benchmark and the settings tests import this module without it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

from farm.proxy.app import create_app
from farm.proxy.child import ProxyServer
from farm.proxy.settings import ProxySettings
from farm.settings import Loaded, run_main, setting, to_argv

logger = logging.getLogger(__name__)

Interface = Literal["asgi", "rsgi"]


class GranianProxySettings(ProxySettings):
    """The proxy's settings plus the granian interface that serves it."""

    prog = "python -m bench.granian_proxy"
    summary = "Serve the proxy app on granian (benchmark comparison with uvicorn)."

    interface: Interface = setting(
        "asgi", help="granian interface: asgi, or rsgi through bench.rsgi_adapter"
    )


def _load_app(settings: GranianProxySettings) -> Any:
    """The app a granian worker serves: built in the worker, after the fork."""
    app = create_app(settings)
    if settings.interface == "rsgi":
        from bench.rsgi_adapter import RsgiAdapter

        return RsgiAdapter(app)
    return app


def serve(settings: GranianProxySettings) -> None:
    """Run the proxy on granian (one worker, uvloop, HTTP/1.1) until SIGTERM or SIGINT."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.server import Server

    server = Server(
        # granian wants an import string; the loader below hands it the app object instead.
        "bench.granian_proxy:unused",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI if settings.interface == "rsgi" else Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
        log_level=settings.log_level,  # type: ignore[arg-type]  # the same four names
    )
    logger.info(
        "proxy (granian %s) on http://%s:%d -> %s",
        settings.interface,
        settings.host,
        settings.port,
        ", ".join(settings.backend),
    )
    # Workers are forked, so the loader needs no pickling.
    server.serve(target_loader=partial(_load_app, settings), wrap_loader=False)


class GranianProxyServer(ProxyServer):
    """`ProxyServer`, but the child is `python -m bench.granian_proxy --interface ...`.

    granian runs a supervisor process and one worker: measure RSS over the process tree.
    """

    def __init__(self, backends: Sequence[str], interface: Interface, **settings: Any) -> None:
        super().__init__(backends, **settings)
        self.settings = GranianProxySettings(
            **self.settings.model_dump(exclude_defaults=True), interface=interface
        )
        self.argv = [sys.executable, "-m", "bench.granian_proxy", *to_argv(self.settings)]


def _serve(loaded: Loaded[GranianProxySettings]) -> int:
    settings = loaded.settings
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Load `GranianProxySettings` from flags and environment and serve."""
    return run_main(GranianProxySettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
