"""Settings of `python -m farm.keys` (`invoke keys`) and `python -m farm.keys usage`
(`invoke usage`): each declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from farm.common.statedir import FarmStateSettings
from farm.settings import setting

DB_NAME = "keys.db"


class KeyDbSettings(FarmStateSettings):
    """Where the key database is: `keys.db` in the farm's state directory unless set."""

    keys_db: Path | None = setting(
        None,
        help="the key and usage database (default: keys.db in the farm's state directory)",
        env="FARM_KEYS_DB",
        metavar="FILE",
    )

    @property
    def db_path(self) -> Path:
        """The database file this command uses."""
        return self.keys_db or self.state_dir / DB_NAME


class KeysListSettings(KeyDbSettings):
    """`python -m farm.keys list`."""

    prog = "python -m farm.keys list"
    summary = "List the proxy's named API keys and their limits (never their secrets)."


class KeyNameSettings(KeyDbSettings):
    """A verb on one named key (a base: each verb below has its own `prog`)."""

    name: str = setting(help="the key's name", positional=True)


class KeysRevokeSettings(KeyNameSettings):
    """`python -m farm.keys revoke NAME`."""

    prog = "python -m farm.keys revoke"
    summary = "Revoke a key: its next request gets 401 (no restart needed)."


class KeysRotateSettings(KeyNameSettings):
    """`python -m farm.keys rotate NAME`."""

    prog = "python -m farm.keys rotate"
    summary = "Give a key a new secret (shown once); the old one stops working at once."


class KeysAddSettings(KeyNameSettings):
    """`python -m farm.keys add NAME`."""

    prog = "python -m farm.keys add"
    summary = "Add a named API key (printed once; only its hash is stored)."

    max_streams: int | None = setting(
        None, help="streams this key may run at once (unset: no limit)", metavar="N", gt=0
    )
    max_queued: int | None = setting(
        None,
        help="requests this key may have waiting for a slot (unset: no limit; over it: 429)",
        metavar="N",
        ge=0,
    )
    tokens_per_min: int | None = setting(
        None, help="output tokens per minute (unset: no limit; over it: 429)", metavar="N", gt=0
    )
    weight: float = setting(
        1.0, help="share of the slots under contention, relative to other keys", gt=0
    )
    admin: bool = setting(False, help="may pull, create, copy, push and delete models")
    relay: bool = setting(
        False, help="may act for NKN peers (the relay's key: it names each peer to the proxy)"
    )
    nkn_peer: str | None = setting(
        None,
        help="the NKN peer (address or public key) this key stands for behind the relay",
        metavar="ADDR",
    )


class UsageSettings(KeyDbSettings):
    """`python -m farm.keys usage`."""

    prog = "python -m farm.keys usage"
    summary = "Show what each key (or model, or day) used: requests, tokens, TTFT."

    since: str = setting("7d", help="how far back (90s, 30m, 12h, 7d, 2w)", metavar="SPAN")
    by: Literal["key", "model", "day"] = setting("key", help="group rows by key, model or day")
    csv: bool = setting(False, help="print CSV instead of a table")
