"""Errors of the demo site's server (a bad setting is the settings layer's `SettingsError`).

Tree::

    SiteError
    ├── CertificateError    the TLS certificate or key cannot be made or read
    ├── AssetMissingError   a file the page needs is not installed (the page itself)
    └── RpcRefused          a seed RPC call /nkn-rpc refuses (HTTP status, JSON-RPC code)
"""

from __future__ import annotations


class SiteError(Exception):
    """Base class of every error the demo site's server raises."""


class CertificateError(SiteError):
    """The TLS certificate or key cannot be made or read."""


class AssetMissingError(SiteError):
    """A file the page needs is not installed."""


class RpcRefused(SiteError):
    """A seed RPC call `/nkn-rpc` refuses: the HTTP status and JSON-RPC error it answers with.

    `call_id` is the call's `id` when it was read (JSON-RPC echoes it), else None.
    """

    def __init__(self, status: int, code: int, message: str, call_id: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.call_id = call_id
