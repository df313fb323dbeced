"""Errors of the demo site's server (a bad setting is the settings layer's `SettingsError`).

Tree::

    SiteError
    ├── CertificateError    the TLS certificate or key cannot be made or read
    └── AssetMissingError   a file the page needs is not installed (the page itself)
"""

from __future__ import annotations


class SiteError(Exception):
    """Base class of every error the demo site's server raises."""


class CertificateError(SiteError):
    """The TLS certificate or key cannot be made or read."""


class AssetMissingError(SiteError):
    """A file the page needs is not installed."""
