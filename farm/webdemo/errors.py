"""Errors of the demo site's server.

Tree::

    SiteError
    ├── SiteConfigError     a setting is missing or malformed (names the variable or flag)
    ├── CertificateError    the TLS certificate or key cannot be made or read
    └── AssetMissingError   a file the page needs is not installed (e.g. the nkn-sdk build)
"""

from __future__ import annotations


class SiteError(Exception):
    """Base class of every error the demo site's server raises."""


class SiteConfigError(SiteError):
    """A setting is missing or malformed; the message names the variable or flag."""


class CertificateError(SiteError):
    """The TLS certificate or key cannot be made or read."""


class AssetMissingError(SiteError):
    """A file the page needs is not installed."""
