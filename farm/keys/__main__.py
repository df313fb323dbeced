"""`python -m farm.keys add|list|revoke|rotate [NAME]` and `python -m farm.keys usage`
(`invoke keys.add NAME`, `keys.list`, `keys.revoke NAME`, `keys.rotate NAME`, `usage`).

A new or rotated key is printed once, on stdout alone (so `KEY=$(invoke keys add x)` works);
only its hash is kept. Errors are one line and exit 1 (2 for a bad flag).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from farm.keys.errors import KeysError
from farm.keys.records import Limits
from farm.keys.settings import (
    KeyDbSettings,
    KeyNameSettings,
    KeysAddSettings,
    KeysListSettings,
    KeysRevokeSettings,
    KeysRotateSettings,
    UsageSettings,
)
from farm.keys.store import KeyStore
from farm.keys.usage import render_csv, render_table, since_epoch, summarise
from farm.settings import Loaded, ServiceSettings, run_main


def _add(loaded: Loaded[KeysAddSettings]) -> int:
    s = loaded.settings
    limits = Limits(s.max_streams, s.max_queued, s.tokens_per_min, s.weight)
    with _open(s) as store:
        secret = store.add(s.name, limits, admin=s.admin, relay=s.relay, nkn_peer=s.nkn_peer)
    _show_once(s.name, secret)
    return 0


def _rotate(loaded: Loaded[KeyNameSettings]) -> int:
    with _open(loaded.settings) as store:
        secret = store.rotate(loaded.settings.name)
    _show_once(loaded.settings.name, secret)
    return 0


def _revoke(loaded: Loaded[KeyNameSettings]) -> int:
    with _open(loaded.settings) as store:
        store.revoke(loaded.settings.name)
    sys.stderr.write(f"revoked {loaded.settings.name}: its next request gets 401\n")
    return 0


def _show_once(name: str, secret: str) -> None:
    sys.stderr.write(f"key {name} (shown once; store it now):\n")
    sys.stdout.write(secret + "\n")


@contextmanager
def _open(settings: KeyDbSettings) -> Iterator[KeyStore]:
    store = KeyStore(settings.db_path)
    try:
        yield store
    finally:
        store.close()


def _list_keys(loaded: Loaded[KeysListSettings]) -> int:
    with _open(loaded.settings) as store:
        _list(store)
    return 0


def _list(store: KeyStore) -> None:
    rows = [
        (
            "name",
            "state",
            "admin",
            "relay",
            "max-streams",
            "max-queued",
            "tokens/min",
            "weight",
            "nkn-peer",
        )
    ]
    for key in store.keys():
        lim = limits_cells(key.limits)
        rows.append(
            (
                key.name,
                "active" if key.active else "revoked",
                "yes" if key.admin else "no",
                "yes" if key.relay else "no",
                *lim,
                key.nkn_peer or "-",
            )
        )
    if len(rows) == 1:
        sys.stdout.write("no keys (add one: invoke keys add NAME)\n")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def limits_cells(limits: Limits) -> tuple[str, str, str, str]:
    """A key's limits as table cells ('-' for none)."""

    def cell(value: int | None) -> str:
        return "-" if value is None else str(value)

    return (
        cell(limits.max_streams),
        cell(limits.max_queued),
        cell(limits.tokens_per_min),
        f"{limits.weight:g}",
    )


def _usage(loaded: Loaded[UsageSettings]) -> int:
    s = loaded.settings
    since = since_epoch(s.since)
    if not s.db_path.exists():
        sys.stdout.write(f"no usage recorded yet ({s.db_path} does not exist)\n")
        return 0
    with _open(s) as store:
        lines = summarise(store.usage(since), s.by)
    if s.csv:
        sys.stdout.write(render_csv(lines, s.by))
    elif not lines:
        sys.stdout.write(
            f"no finished requests since {time.strftime('%Y-%m-%d %H:%M', time.localtime(since))}\n"
        )
    else:
        sys.stdout.write(render_table(lines, s.by))
    return 0


VERBS: dict[str, tuple[type[ServiceSettings], Callable[[Any], int]]] = {
    "add": (KeysAddSettings, _add),
    "list": (KeysListSettings, _list_keys),
    "revoke": (KeysRevokeSettings, _revoke),
    "rotate": (KeysRotateSettings, _rotate),
    "usage": (UsageSettings, _usage),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch on the verb (`add`, `list`, `revoke`, `rotate`, `usage`)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in VERBS:
        sys.stderr.write(f"usage: python -m farm.keys {{{','.join(VERBS)}}} ...\n")
        return 2
    cls, run = VERBS[args[0]]
    try:
        return run_main(cls, run, args[1:])
    except KeysError as exc:
        sys.stderr.write(f"python -m farm.keys {args[0]}: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
