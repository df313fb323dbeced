"""The front door of our HTTP servers: client-facing limits enforced before a request is held.

`DoorSettings` declares each limit once (services inherit it); `door_config()` builds the
uvicorn configuration with the guarded protocol (`farm.common.frontdoor.protocol`) that
enforces them, and `serve()` runs it in the foreground (a test runs it inside its own loop);
`BodyLimit` caps request bodies for apps that do not route bodies themselves.
"""

from __future__ import annotations

from farm.common.frontdoor.bodylimit import BodyLimit
from farm.common.frontdoor.server import door_config, serve
from farm.common.frontdoor.settings import DoorSettings

__all__ = ["BodyLimit", "DoorSettings", "door_config", "serve"]
