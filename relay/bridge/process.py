"""One run of the Node bridge process: spawn `node bridge.js`, write commands, read events."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from farm.common.linechild import LINE_LIMIT_BYTES, LineChild
from relay.bridge.config import BridgeConfig
from relay.bridge.errors import BridgeNotInstalledError
from relay.bridge.protocol import CLOSE_LINE, Event, OpenCommand, decode_event

log = logging.getLogger(__name__)


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


class BridgeProcess(LineChild[Event]):
    """A running `bridge.js`; ends when the process exits. Supervised by `NknTransport`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc, decode_event, "NKN bridge")

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

    async def write(self, line: bytes) -> bool:
        """Write one command line and wait for the pipe to take it; False when gone."""
        if not self.write_line(line):
            return False
        stdin = self._proc.stdin
        try:
            if stdin is not None:
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

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
