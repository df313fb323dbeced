"""One run of the Node worker: spawn `node worker.js`, write commands, read events.

`check_installed` turns a missing piece (Node, the npm packages) into one line with the fix
before anything starts.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from farm.common.linechild import LINE_LIMIT_BYTES, LineChild
from farm.sim.engines.llamacpp.protocol import Event, decode_event
from farm.sim.errors import EngineUnavailable

log = logging.getLogger(__name__)

WORKER_DIR = Path(__file__).resolve().parent
NODE = "node"
_PACKAGES = ("node-llama-cpp", "@node-llama-cpp/linux-x64")


def check_installed(worker_dir: Path = WORKER_DIR) -> str:
    """The Node executable, once Node and the worker's npm packages are there."""
    node = shutil.which(NODE)
    if node is None:
        raise EngineUnavailable(
            "Node.js (`node`) not found on PATH: the llama.cpp engine needs Node >= 18 "
            "(apt-get install nodejs npm)"
        )
    for package in _PACKAGES:
        if not (worker_dir / "node_modules" / package / "package.json").is_file():
            raise EngineUnavailable(
                f"the llama.cpp engine's npm packages are not installed ({package}): run "
                f"`npm ci --omit=optional --prefix {_shown(worker_dir)}` (or `invoke setup`)"
            )
    return node


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class WorkerProcess(LineChild[Event]):
    """A running `worker.js`; ends when the process exits."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc, decode_event, "llama.cpp worker")

    @classmethod
    async def spawn(cls, node: str, worker_dir: Path = WORKER_DIR) -> WorkerProcess:
        """Start the process (it waits for its `load` command)."""
        proc = await asyncio.create_subprocess_exec(
            node,
            "worker.js",
            cwd=worker_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT_BYTES,
            # Its own session: a Ctrl-C or SIGTERM to the simulator's process group must not
            # kill it before the simulator shuts it down (that would read as a crash). If the
            # simulator dies, the worker sees its stdin close and exits by itself.
            start_new_session=True,
        )
        return cls(proc)

    def write(self, line: bytes) -> bool:
        """Queue one command line (commands are small; the pipe buffers them); False if gone."""
        return self.write_line(line)

    async def close(self, line: bytes, timeout_s: float) -> None:
        """Send `line` (the shutdown command), close stdin, kill after `timeout_s`."""
        self.write(line)
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), timeout_s)
        except TimeoutError:
            log.warning("llama.cpp worker did not exit in %.1f s; killing it", timeout_s)
            self.kill()
        await self.wait()
