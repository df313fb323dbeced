"""Errors of the key store.

KeysError
├── KeyStoreError      the database file is corrupt, foreign or from a newer version
├── KeyNameError       a name that is taken, unknown or malformed
└── UsageQueryError    a `--since` or `--by` the usage report cannot answer
"""

from __future__ import annotations


class KeysError(Exception):
    """Base of the key store's errors; the message is one line that names the fix."""


class KeyStoreError(KeysError):
    """The database cannot be used."""


class KeyNameError(KeysError):
    """A key name that is taken, unknown or malformed."""


class UsageQueryError(KeysError):
    """A usage query that cannot be answered."""
