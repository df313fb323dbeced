"""The key database: keys as hashes, revocation, usage rows, and files that are not ours."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from farm.keys.errors import KeyNameError, KeyStoreError
from farm.keys.records import Limits, UsageRow
from farm.keys.store import SCHEMA_VERSION, KeyStore, key_hash


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.db")


def test_a_key_is_stored_only_as_its_hash(store: KeyStore, tmp_path: Path) -> None:
    secret = store.add("alice", Limits(max_streams=2))
    assert secret.startswith("ofk_") and len(secret) > 40
    raw = (tmp_path / "keys.db").read_bytes() + (tmp_path / "keys.db-wal").read_bytes()
    assert secret.encode() not in raw
    assert key_hash(secret).encode() in raw
    record = store.lookup(secret)
    assert record is not None and record.name == "alice" and record.limits.max_streams == 2


def test_revoked_and_rotated_keys(store: KeyStore) -> None:
    old = store.add("bob", Limits())
    store.revoke("bob")
    assert store.lookup(old) is not None and not store.lookup(old).active  # type: ignore[union-attr]
    new = store.rotate("bob")
    assert store.lookup(old) is None
    assert store.lookup(new).active  # type: ignore[union-attr]


def test_names_are_unique_and_checked(store: KeyStore) -> None:
    store.add("carol", Limits())
    with pytest.raises(KeyNameError, match="taken"):
        store.add("carol", Limits())
    with pytest.raises(KeyNameError, match="letters"):
        store.add("no spaces", Limits())
    with pytest.raises(KeyNameError, match="no key named"):
        store.revoke("dave")


def test_usage_rows_are_committed_when_record_returns(store: KeyStore, tmp_path: Path) -> None:
    row = UsageRow("alice", "m", 3, 7, 0.1, 1.5, 200, 1000.0)
    store.record(row)
    # A second connection (another process would see the same) reads it without a close.
    other = sqlite3.connect(tmp_path / "keys.db")
    assert other.execute("SELECT output_tokens FROM usage").fetchall() == [(7,)]
    assert store.usage(999.0) == [row]
    assert store.tokens_since(999.0) == {"alice": 7}


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="another program"):
        KeyStore(path)
    assert path.read_bytes() == before


def test_a_corrupt_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(KeyStoreError, match="not a usable key database"):
        KeyStore(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    KeyStore(tmp_path / "keys.db").close()
    db = sqlite3.connect(tmp_path / "keys.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(KeyStoreError, match="newer ollama-farm"):
        KeyStore(tmp_path / "keys.db")


def _keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm.keys", *args, "--keys-db", str(tmp_path / "k.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_shows_a_new_key_once_and_lists_without_secrets(tmp_path: Path) -> None:
    added = _keys(tmp_path, "add", "alice", "--max-streams", "2", "--admin")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("ofk_") and "shown once" in added.stderr
    listed = _keys(tmp_path, "list")
    assert "alice" in listed.stdout and "active" in listed.stdout
    assert secret not in listed.stdout
    again = _keys(tmp_path, "add", "alice")
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "taken" in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_names_a_corrupt_database_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "k.db").write_bytes(b"\x00garbage" * 64)
    result = _keys(tmp_path, "list")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "FARM_KEYS_DB" in result.stderr
