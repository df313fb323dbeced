"""`python -m relay` as a subprocess on the local NKN test network, for the NKN browser tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from farm.common.childserver import ChildServer

SUBCLIENTS = 2


def nkn_address(seed_hex: str) -> str:
    """The NKN address of a seed with no identifier: its ed25519 public key in hex."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


class RelayProcess(ChildServer):
    """A relay serving `targets` over the NKN node at `rpc_url`; `.address` is its NKN address.

    `settings` adds `.env` keys (e.g. RELAY_ALLOWED_PEERS) through the environment.
    """

    stop_grace_s = 10.0

    def __init__(
        self,
        workdir: Path,
        rpc_url: str,
        targets: dict[str, str],
        settings: dict[str, str] | None = None,
    ) -> None:
        self.seed_hex = os.urandom(32).hex()
        self.address = nkn_address(self.seed_hex)
        self._workdir = workdir
        self._env = {
            **os.environ,
            "NKN_SEED_HEX": self.seed_hex,
            "NKN_NUM_SUBCLIENTS": str(SUBCLIENTS),
            # The bridge maps NKN_BRIDGE_SEED_WS onto nkn-sdk's rpcServerAddr.
            "NKN_BRIDGE_SEED_WS": rpc_url,
            "RELAY_TARGETS": json.dumps(targets),
            "RELAY_WORKERS": "8",
            "NO_PROXY": "127.0.0.1,localhost,::1",
            **(settings or {}),
        }
        super().__init__()

    @property
    def subclient_addresses(self) -> list[str]:
        """The addresses the relay registers on the node (one per sub-client)."""
        return [f"__{i}__.{self.address}" for i in range(SUBCLIENTS)]

    def start(self) -> RelayProcess:
        """Start the relay; callers wait for its registrations on the local node."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "--env-file", str(self._workdir / ".env")],
            cwd=self._workdir,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        return self

    def wait_registered(self, node_state: Callable[[], dict[str, Any]], timeout: float) -> None:
        """Poll the local node until every sub-client of the relay is registered there."""
        wanted = set(self.subclient_addresses)
        deadline = time.monotonic() + timeout
        while not wanted <= set(node_state()["clients"]):
            if (status := self.exited()) is not None:
                raise RuntimeError(f"relay exited with status {status}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay {self.address} never registered on the local node")
            time.sleep(0.05)
