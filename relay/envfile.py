"""The relay's `.env` on first run: a fresh NKN identity and the seed's keys, mode 0600.

Creating the file is the relay's own policy (its identity must survive restarts and stay
private); reading it is the settings layer's (`RelaySettings`, `--env-file`). An existing file
is never touched, so the seed, once generated, stays the relay's address.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from relay.targets import DEFAULT_TARGETS

ENV_TEMPLATE = """\
# ollama-farm NKN relay settings (created on first run; keep this file private: mode 0600).
NKN_SEED_HEX={seed}
NKN_NUM_SUBCLIENTS=2
RELAY_WORKERS=4
RELAY_MAX_BODY_B=2097152
RELAY_VERIFY_DEFAULT=1
RELAY_TARGETS={targets}
# Optional CSV of NKN seed node addresses. The original passed them as seedWsAddr, which
# nkn-sdk ignores; they now reach the SDK as rpcServerAddr (see README, NKN relay).
NKN_BRIDGE_SEED_WS=
# Raw "url" requests are refused unless they start with one of these (CSV of URL prefixes).
RELAY_ALLOW_URLS=
# NKN addresses or public keys allowed to use the relay (CSV); empty means anyone.
RELAY_ALLOWED_PEERS=
"""


def new_seed_hex() -> str:
    """A fresh random NKN seed (32 bytes, hex)."""
    return secrets.token_hex(32)


def ensure_env_file(path: Path) -> bool:
    """Create `.env` with a fresh seed and the seed's defaults (mode 0600); True if created."""
    text = ENV_TEMPLATE.format(seed=new_seed_hex(), targets=json.dumps(DEFAULT_TARGETS))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # the umask may have narrowed it further, never widened; be exact.
    return True
