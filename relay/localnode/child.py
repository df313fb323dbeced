"""`LocalNode`: run the local NKN test node as a subprocess for tests and benchmarks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from farm.common.childserver import ChildServer
from farm.settings import to_argv
from relay.localnode.settings import LocalNodeSettings

_START_LINE = re.compile(r"listening on (https?://\S+)")


class LocalNode(ChildServer):
    """A `python -m relay.localnode` subprocess on a loopback port, ready on `__enter__`.

    `port=0` (the default) lets the node pick a free port; pass a fixed port to restart a
    node where clients expect it. `settings` sets everything else (e.g. lower limits); the
    arguments given here win over it. `.rpc_url` is what the SDK's `rpcServerAddr` should be.
    """

    def __init__(
        self,
        port: int = 0,
        host: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        start_timeout: float = 20.0,
        settings: LocalNodeSettings | None = None,
    ) -> None:
        update: dict[str, object] = {"port": port}
        # TLS needs both files; one alone is ignored, as it always was here.
        if certfile and keyfile:
            update.update(certfile=Path(certfile), keyfile=Path(keyfile))
        if host:
            update["host"] = host
        settings = (settings or LocalNodeSettings()).model_copy(update=update)
        self.host = settings.host
        self.port = port
        self._args = to_argv(settings)
        self._start_timeout = start_timeout
        self.url = ""
        super().__init__()

    def start(self) -> LocalNode:
        """Start the subprocess and wait for its start line."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "relay.localnode", *self._args],
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._proc.stdout is None:
            raise RuntimeError("local NKN node started without a stdout pipe")
        line = self._read_start_line(self._proc.stdout)
        match = _START_LINE.search(line)
        if match is None:
            self.kill()
            raise RuntimeError(f"local NKN node did not start: {line!r}")
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def _read_start_line(self, stdout: IO[str]) -> str:
        # A thread, so a node that never prints cannot hang the caller past the timeout.
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._start_timeout)
        return result[0] if result else ""

    @property
    def rpc_url(self) -> str:
        """The seed RPC URL for nkn-sdk's `rpcServerAddr` (and `NKN_BRIDGE_SEED_WS`)."""
        return f"{self.url}/"

    def state(self) -> dict[str, Any]:
        """The node's `/_localnode/state`: registered client addresses and counters."""
        with urllib.request.urlopen(f"{self.url}/_localnode/state", timeout=5) as resp:
            data: dict[str, Any] = json.load(resp)
        return data

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> None:
        """Poll `state()` until `predicate` holds; raise TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"local node state never matched: {state}")
            time.sleep(0.05)
