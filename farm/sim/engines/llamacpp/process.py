"""One run of the Node worker: spawn `node worker.js`, write commands, read events.

`check_installed` turns a missing piece (Node, the npm packages) into one line with the fix
before anything starts.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from farm.sim.engines.llamacpp.protocol import Event, decode_event
from farm.sim.errors import EngineUnavailable

log = logging.getLogger(__name__)

WORKER_DIR = Path(__file__).resolve().parent
NODE = "node"
# An embedding answer is one line: 640 floats per text, a few kB each.
LINE_LIMIT_BYTES = 64 * 1024 * 1024
_STDERR_TAIL = 20
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


class WorkerProcess:
    """A running `worker.js`; ends when the process exits."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

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

    @property
    def pid(self) -> int:
        """The Node process id."""
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, once it has exited."""
        return self._proc.returncode

    def stderr_tail(self) -> str:
        """The last lines the worker (and llama.cpp) wrote to stderr."""
        return " | ".join(self._stderr)

    def write(self, line: bytes) -> bool:
        """Queue one command line (commands are small; the pipe buffers them); False if gone."""
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(line)
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
                log.error("llama.cpp worker wrote a line over %d bytes; skipped", LINE_LIMIT_BYTES)
                continue
            if not line:
                return
            try:
                yield decode_event(line)
            except ValueError as exc:
                log.warning("llama.cpp worker: %s", exc)

    async def _drain_stderr(self) -> None:
        stderr = self._proc.stderr
        if stderr is None:
            return
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            log.debug("llama.cpp worker: %s", text)

    def kill(self) -> None:
        """SIGKILL the process."""
        if self._proc.returncode is None:
            self._proc.kill()

    async def wait(self) -> int:
        """Wait for the exit and the end of its stderr."""
        code = await self._proc.wait()
        await self._stderr_task
        return code

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
