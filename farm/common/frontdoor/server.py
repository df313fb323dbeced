"""Running an ASGI app behind the front door: `door_config()` builds the uvicorn configuration,
`serve()` runs it in the foreground (a test runs the configuration inside its own loop).

The configuration gives uvicorn the guarded protocol with a fresh `Door`, the keep-alive
timeout, and the connection cap the descriptor limit allows. WebSockets are off: an upgraded
connection would leave the guarded protocol, and no server of ours speaks them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import uvicorn

from farm.common.frontdoor.door import Door, DoorLimits
from farm.common.frontdoor.fds import connection_cap
from farm.common.frontdoor.protocol import GuardedProtocol
from farm.common.frontdoor.settings import DoorSettings

logger = logging.getLogger(__name__)

ASGIApp = Any  # an ASGI 3 callable; uvicorn checks its shape when it loads it
LogLevel = Literal["debug", "info", "warning", "error"]


def guarded_protocol(settings: DoorSettings) -> type[GuardedProtocol]:
    """A protocol class for one server: `GuardedProtocol` with its own `Door`."""
    limits = DoorLimits.of(settings, connection_cap(settings.max_connections))
    return type("DoorProtocol", (GuardedProtocol,), {"door": Door(limits)})


def door_config(
    app: ASGIApp,
    settings: DoorSettings,
    *,
    host: str,
    port: int,
    log_level: LogLevel = "info",
    lifespan: Literal["auto", "on", "off"] = "on",
    access_log: bool = False,
    server_header: bool = True,
    date_header: bool = True,
    graceful_shutdown_s: int = 5,
    ssl_certfile: str | Path | None = None,
    ssl_keyfile: str | Path | None = None,
    loop: Literal["auto", "asyncio", "uvloop", "none"] = "auto",
) -> uvicorn.Config:
    """The uvicorn configuration that serves `app` under `settings`' limits.

    Logging is left to the entry point (`log_config=None`: uvicorn's loggers propagate to the
    root logger). `loop="none"` uses the running loop (a server inside a test's loop).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings),
        ws="none",
        loop=loop,
        lifespan=lifespan,
        log_config=None,
        log_level=log_level,
        access_log=access_log,
        server_header=server_header,
        date_header=date_header,
        # Our servers do not sit behind a proxy whose X-Forwarded-* they could trust.
        proxy_headers=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
        ssl_certfile=str(ssl_certfile) if ssl_certfile is not None else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile is not None else None,
    )
    # uvicorn annotates this as int but hands it to `call_later`, which takes seconds as float.
    config.timeout_keep_alive = settings.keepalive_timeout  # type: ignore[assignment]
    return config


def serve(config: uvicorn.Config) -> None:
    """Serve until SIGINT/SIGTERM (blocks); `config` comes from `door_config`."""
    uvicorn.Server(config).run()
