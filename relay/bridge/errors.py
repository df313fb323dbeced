"""Errors of the NKN bridge (the Node process running nkn-sdk, and its supervisor).

Tree::

    BridgeError
    ├── BridgeConfigError       a setting is invalid (names the .env key)
    ├── BridgeNotInstalledError Node.js or the pinned nkn-sdk is missing (`npm ci` not run)
    ├── BridgeStartError        the bridge never became ready (no node reachable, bad seed)
    ├── BridgeClosedError       the transport was used before start() or after close()
    ├── MessageTooLargeError    a DM exceeds NKN's 4,000,000-byte message limit
    └── QueueFullError          the bridge is down and the bounded outgoing queue is full
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base class for every error of the NKN bridge."""


class BridgeConfigError(BridgeError, ValueError):
    """A bridge setting is invalid; the message names the variable."""


class BridgeNotInstalledError(BridgeError):
    """Node.js or the bridge's npm packages are not installed."""


class BridgeStartError(BridgeError):
    """The bridge process exited or timed out before the NKN client was ready."""


class BridgeClosedError(BridgeError):
    """The transport is not started, or already closed."""


class MessageTooLargeError(BridgeError):
    """The payload cannot travel as one NKN direct message."""


class QueueFullError(BridgeError):
    """Too many outgoing messages are waiting for the bridge to come back."""
