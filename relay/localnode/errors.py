"""Errors of the local NKN node.

Tree::

    LocalNodeError
    ├── CodecError        a protobuf frame from a client could not be decoded
    ├── HeadRefused       a request head broke a bound (line, header count, size)
    └── BodyRefused       a JSON-RPC body broke a bound (size, time between bytes)
"""

from __future__ import annotations


class LocalNodeError(Exception):
    """Base class for every error the local NKN node raises."""


class CodecError(LocalNodeError):
    """A binary websocket frame is not a valid NKN client protobuf message."""


class HeadRefused(LocalNodeError):
    """A request head broke a bound: the node answers `status` (414, 431) and closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BodyRefused(LocalNodeError):
    """A JSON-RPC body broke a bound: the node answers `status` and ends the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
