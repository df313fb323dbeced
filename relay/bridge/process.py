"""One run of the Node bridge process: spawn `node bridge.js`, write commands, read events."""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from relay.bridge.config import BridgeConfig
from relay.bridge.errors import BridgeNotInstalledError
from relay.bridge.protocol import CLOSE_LINE, Event, OpenCommand, decode_event

log = logging.getLogger(__name__)

# A 4 MB DM is one JSON line; leave room for JSON escaping (up to 6 bytes per char for control
# characters, but real frames are mostly ASCII) and never fail on a long line.
LINE_LIMIT_BYTES = 64 * 1024 * 1024
_STDERR_TAIL = 20


def check_installed(config: BridgeConfig) -> str:
    """Return the Node executable, or explain how to install what is missing."""
    path = None if config.environ is None else config.environ.get("PATH", "")
    node = shutil.which(config.node_command, path=path)
    if node is None:
        raise BridgeNotInstalledError(
            f"Node.js ({config.node_command!r}) not found on PATH; the NKN bridge needs Node >= 18"
        )
    sdk = Path(config.bridge_dir) / "node_modules" / "nkn-sdk" / "package.json"
    if not sdk.is_file():
        raise BridgeNotInstalledError(
            "the NKN bridge's npm packages are not installed: run `npm ci --prefix relay/bridge`"
            f" (or `invoke setup`); looked for {sdk}"
        )
    return node


class BridgeProcess:
    """A running `bridge.js`; ends when the process exits. Supervised by `NknTransport`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def spawn(cls, config: BridgeConfig, rpc_server_addr: str | None) -> BridgeProcess:
        """Start the process and send it the `open` command."""
        node = check_installed(config)
        proc = await asyncio.create_subprocess_exec(
            node,
            "bridge.js",
            cwd=config.bridge_dir,
            env=None if config.environ is None else dict(config.environ),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT_BYTES,
        )
        bridge = cls(proc)
        command = OpenCommand(
            seed=config.seed_hex,
            identifier=config.identifier,
            num_subclients=config.num_subclients,
            original_client=config.original_client,
            rpc_server_addr=rpc_server_addr,
            tls=config.tls,
            reconnect_interval_min_ms=config.reconnect_interval_min_ms,
            reconnect_interval_max_ms=config.reconnect_interval_max_ms,
        )
        await bridge.write(command.encode())
        return bridge

    @property
    def pid(self) -> int:
        """The Node process id."""
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, once it has exited."""
        return self._proc.returncode

    def stderr_tail(self) -> str:
        """The last lines the bridge (and the SDK's logging) wrote to stderr."""
        return " | ".join(self._stderr)

    async def write(self, line: bytes) -> bool:
        """Write one command line; False when the process is gone."""
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(line)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def events(self) -> AsyncIterator[Event]:
        """Decoded stdout events until the process closes stdout; bad lines are logged."""
        stdout = self._proc.stdout
        if stdout is None:
            return
        while True:
            try:
                line = await stdout.readline()
            except ValueError:
                log.error("NKN bridge wrote a line over %d bytes; skipped", LINE_LIMIT_BYTES)
                continue
            if not line:
                return
            try:
                yield decode_event(line)
            except ValueError as exc:
                log.warning("NKN bridge: %s", exc)

    async def _drain_stderr(self) -> None:
        stderr = self._proc.stderr
        if stderr is None:
            return
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            log.debug("nkn-sdk: %s", text)

    def kill(self) -> None:
        """SIGKILL the process (used when it stops answering)."""
        if self._proc.returncode is None:
            self._proc.kill()

    async def reap(self, grace_s: float) -> int:
        """After stdout ended: let the process exit by itself, kill it after `grace_s`.

        Killing at once would race asyncio's child watcher: `Popen.send_signal` polls and may
        reap the exit status first, which then reads as 255.
        """
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace_s)
        except TimeoutError:
            self.kill()
        return await self.wait()

    async def wait(self) -> int:
        """Wait for the exit and the end of its stderr."""
        code = await self._proc.wait()
        await self._stderr_task
        return code

    async def close(self, timeout_s: float) -> None:
        """Ask the bridge to close its client and exit; kill it after `timeout_s`."""
        await self.write(CLOSE_LINE)
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), timeout_s)
        except TimeoutError:
            log.warning("NKN bridge did not exit in %.1f s; killing it", timeout_s)
            self.kill()
        await self.wait()
