"""Errors of the local NKN node.

Tree::

    LocalNodeError
    └── CodecError        a protobuf frame from a client could not be decoded
"""

from __future__ import annotations


class LocalNodeError(Exception):
    """Base class for every error the local NKN node raises."""


class CodecError(LocalNodeError):
    """A binary websocket frame is not a valid NKN client protobuf message."""
