"""`RelayChild`: `python -m relay` as users run it, as a child of a benchmark.

The relay runs in its own process so that its CPU time and memory (with its Node bridge, the
process tree) are measured apart from the peers that load it. Its NKN identity is chosen up
front (`seed_hex`), so its public key is known before it starts: the local node's fault
directions are relative to it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.errors import TargetError
from farm.common.childserver import ChildServer
from farm.settings import child_env, to_argv
from relay.settings import RelaySettings

READY_PREFIX = "NKN ready: "


def public_key(seed_hex: str) -> str:
    """The ed25519 public key (hex) of an NKN seed: the last part of its NKN address."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


class RelayChild(ChildServer):
    """Runs `python -m relay` with `settings` (its seed included) until stopped.

    `address` is the relay's NKN address once `start()` returns; its output goes to `log_path`.
    `environ` is the environment the child starts from (the entry point's snapshot).
    """

    stop_grace_s = 10.0

    def __init__(
        self,
        settings: RelaySettings,
        log_path: Path,
        environ: Mapping[str, str],
        ready_timeout_s: float = 60.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.log_path = log_path
        self.address = ""
        self._env = {**environ, **child_env(settings)}
        self._ready_timeout_s = ready_timeout_s

    def start(self) -> RelayChild:
        """Start the relay and wait for its `NKN ready: <address>` line."""
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "relay", *to_argv(self.settings)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self._env,
                text=True,
            )
        line = self._ready_line(self._proc)
        if not line.startswith(READY_PREFIX):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-800:]
            raise TargetError(f"the relay did not join the local NKN node: {line!r} {tail}")
        self.address = line.removeprefix(READY_PREFIX).strip()
        return self

    def _ready_line(self, proc: subprocess.Popen[str]) -> str:
        # A thread, so that a relay that never prints cannot hang the bench past the timeout;
        # after the ready line it drains stdout, so the relay never blocks writing to it.
        stdout = proc.stdout
        if stdout is None:
            raise RuntimeError("relay started without a stdout pipe")
        ready = threading.Event()
        found: list[str] = []

        def read() -> None:
            for line in stdout:
                if not found and line.startswith(READY_PREFIX):
                    found.append(line)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(self._ready_timeout_s)
        return found[0] if found else ""
