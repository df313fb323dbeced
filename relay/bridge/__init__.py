"""The NKN transport: the official nkn-sdk (npm, pinned) driven through a Node bridge.

`NknTransport(BridgeConfig(...))` implements `relay.transport.Transport`. The Node side lives
beside this file (package.json, package-lock.json, bridge.js); install it with
`npm ci --prefix relay/bridge`.
"""

from relay.bridge.config import (
    BridgeConfig,
    default_num_subclients,
    rpc_addrs_from_seed_ws,
    rpc_server_addr,
    rpc_server_addrs,
)
from relay.bridge.errors import (
    BridgeClosedError,
    BridgeConfigError,
    BridgeError,
    BridgeNotInstalledError,
    BridgeStartError,
    MessageTooLargeError,
    QueueFullError,
)
from relay.bridge.supervisor import NknTransport

__all__ = [
    "BridgeClosedError",
    "BridgeConfig",
    "BridgeConfigError",
    "BridgeError",
    "BridgeNotInstalledError",
    "BridgeStartError",
    "MessageTooLargeError",
    "NknTransport",
    "QueueFullError",
    "default_num_subclients",
    "rpc_addrs_from_seed_ws",
    "rpc_server_addr",
    "rpc_server_addrs",
]
