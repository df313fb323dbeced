"""`KeyStore`: the SQLite file holding named keys (as hashes) and per-request usage.

WAL mode with `synchronous=NORMAL`: a committed row survives a kill -9 of the proxy (WAL
frames are in the OS's hands once `COMMIT` returns) without an fsync per request. The schema
carries a version (`PRAGMA user_version`) and is migrated forward on open; a file that is not
ours, or is from a newer version, is refused with one line rather than touched.

Keys are 256-bit random tokens, so a plain SHA-256 is enough to store them: a slow password
hash protects guessable secrets, and these are not guessable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from farm.keys.errors import KeyNameError, KeyStoreError
from farm.keys.records import KeyRecord, Limits, UsageRow

APP_ID = "ollama-farm keys"
KEY_PREFIX = "ofk_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

# MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE farm_meta (app TEXT NOT NULL);
    CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        admin INTEGER NOT NULL DEFAULT 0,
        relay INTEGER NOT NULL DEFAULT 0,
        nkn_peer TEXT UNIQUE,
        max_streams INTEGER,
        max_queued INTEGER,
        tokens_per_min INTEGER,
        weight REAL NOT NULL DEFAULT 1.0,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        ttft_s REAL,
        duration_s REAL NOT NULL,
        status INTEGER NOT NULL,
        finished_at REAL NOT NULL
    );
    CREATE INDEX usage_finished_at ON usage (finished_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_KEY_COLUMNS = (
    "name, admin, relay, nkn_peer, max_streams, max_queued, tokens_per_min, weight, "
    "created_at, revoked_at"
)


def key_hash(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh key, shown once to whoever created it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    """A key name, or KeyNameError saying what a name may be."""
    if not _NAME.fullmatch(name):
        raise KeyNameError(
            f"key name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


class KeyStore:
    """One open database; use from one thread (the proxy's event loop or a CLI)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
            version = self._verify()
            # Only once the file is known to be ours: switching to WAL rewrites its header.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(version)
        except sqlite3.DatabaseError as exc:
            raise KeyStoreError(
                f"{path} is not a usable key database ({exc}): move it away "
                "(or set FARM_KEYS_DB) and a new one is made"
            ) from exc

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    # --- schema -----------------------------------------------------------------------------
    def _verify(self) -> int:
        """The file's schema version; KeyStoreError unless the file is ours (or empty)."""
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise KeyStoreError(
                f"{self.path} was written by a newer ollama-farm (schema {version}, this one "
                f"knows {SCHEMA_VERSION}): upgrade ollama-farm"
            )
        if version == 0 and self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise KeyStoreError(
                f"{self.path} is an SQLite file of another program: use another path"
            )
        if version > 0 and self._app() != APP_ID:
            raise KeyStoreError(f"{self.path} is not an ollama-farm key database")
        return version

    def _migrate(self, version: int) -> None:
        with self._transaction():
            for step in range(version, SCHEMA_VERSION):
                # executescript would commit on its own; run statement by statement instead.
                for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                    self._db.execute(statement)
            if version == 0:
                self._db.execute("INSERT INTO farm_meta (app) VALUES (?)", (APP_ID,))
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _app(self) -> str | None:
        try:
            row = self._db.execute("SELECT app FROM farm_meta").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- keys -------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        limits: Limits,
        *,
        admin: bool = False,
        relay: bool = False,
        nkn_peer: str | None = None,
    ) -> str:
        """Create a key; returns its secret (not stored anywhere)."""
        check_name(name)
        secret = new_secret()
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO keys (name, hash, admin, relay, nkn_peer, max_streams, max_queued,"
                    " tokens_per_min, weight, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        key_hash(secret),
                        int(admin),
                        int(relay),
                        nkn_peer,
                        limits.max_streams,
                        limits.max_queued,
                        limits.tokens_per_min,
                        limits.weight,
                        time.time(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            taken = "NKN peer" if "nkn_peer" in str(exc) else "name"
            raise KeyNameError(
                f"key {name!r}: that {taken} is taken (`invoke keys list`; revoke or rotate it)"
            ) from exc
        return secret

    def rotate(self, name: str) -> str:
        """Give `name` a new secret (the old one stops working at once) and un-revoke it."""
        secret = new_secret()
        with self._transaction():
            self._must_exist(name)
            self._db.execute(
                "UPDATE keys SET hash = ?, revoked_at = NULL WHERE name = ?",
                (key_hash(secret), name),
            )
        return secret

    def revoke(self, name: str) -> None:
        """Refuse `name` from its next request on."""
        with self._transaction():
            self._must_exist(name)
            self._db.execute("UPDATE keys SET revoked_at = ? WHERE name = ?", (time.time(), name))

    def keys(self) -> list[KeyRecord]:
        """Every key, by name."""
        rows = self._db.execute(f"SELECT {_KEY_COLUMNS} FROM keys ORDER BY name").fetchall()
        return [_record(row) for row in rows]

    def lookup(self, secret: str) -> KeyRecord | None:
        """The key whose secret this is, revoked or not; None if there is none."""
        row = self._db.execute(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE hash = ?", (key_hash(secret),)
        ).fetchone()
        return _record(row) if row else None

    def for_peer(self, peer: str) -> KeyRecord | None:
        """The key registered for an NKN peer, if any."""
        row = self._db.execute(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE nkn_peer = ?", (peer,)
        ).fetchone()
        return _record(row) if row else None

    def has_keys(self) -> bool:
        """Whether any key was ever created."""
        return bool(self._db.execute("SELECT 1 FROM keys LIMIT 1").fetchone())

    def _must_exist(self, name: str) -> None:
        if not self._db.execute("SELECT 1 FROM keys WHERE name = ?", (name,)).fetchone():
            raise KeyNameError(f"no key named {name!r} (`invoke keys list` shows them)")

    # --- usage ------------------------------------------------------------------------------
    def record(self, row: UsageRow) -> None:
        """Store one finished request (committed before this returns)."""
        try:
            self._insert_usage(row)
        except sqlite3.Error as exc:
            raise KeyStoreError(f"{self.path}: cannot record usage ({exc})") from exc

    def _insert_usage(self, row: UsageRow) -> None:
        self._db.execute(
            "INSERT INTO usage (key, model, prompt_tokens, output_tokens, ttft_s, duration_s,"
            " status, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.key,
                row.model,
                row.prompt_tokens,
                row.output_tokens,
                row.ttft_s,
                row.duration_s,
                row.status,
                row.finished_at,
            ),
        )

    def usage(self, since: float) -> list[UsageRow]:
        """Every request that finished at or after `since` (a Unix time), oldest first."""
        rows = self._db.execute(
            "SELECT key, model, prompt_tokens, output_tokens, ttft_s, duration_s, status,"
            " finished_at FROM usage WHERE finished_at >= ? ORDER BY finished_at",
            (since,),
        ).fetchall()
        return [UsageRow(*row) for row in rows]

    def tokens_since(self, since: float) -> dict[str, int]:
        """Output tokens per key since `since`: seeds the per-minute budgets after a restart."""
        rows = self._db.execute(
            "SELECT key, sum(output_tokens) FROM usage WHERE finished_at >= ? GROUP BY key",
            (since,),
        ).fetchall()
        return {key: int(total) for key, total in rows}


def _record(row: tuple[object, ...]) -> KeyRecord:
    name, admin, relay, peer, streams, queued, tpm, weight, created, revoked = row
    return KeyRecord(
        name=str(name),
        limits=Limits(streams, queued, tpm, float(weight)),  # type: ignore[arg-type]
        admin=bool(admin),
        relay=bool(relay),
        nkn_peer=peer,  # type: ignore[arg-type]
        created_at=float(created),  # type: ignore[arg-type]
        revoked_at=None if revoked is None else float(revoked),  # type: ignore[arg-type]
    )
