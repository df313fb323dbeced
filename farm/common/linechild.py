"""A child process spoken to in lines: commands on its stdin, typed events on its stdout.

The Node processes the project supervises (the relay's NKN bridge, the simulator's llama.cpp
worker) share this shape; each subclass adds its own spawn and its commands. stderr is drained
into a short tail so that a crash can be reported with what the child said last.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
# One event is one line; a generous bound, since a DM or an embedding answer is one line.
LINE_LIMIT_BYTES = 64 * 1024 * 1024
_STDERR_TAIL = 20


class LineChild(Generic[E]):
    """A running child; `name` labels its log lines, `decode` turns a stdout line into an
    event (raising ValueError for a bad one)."""

    def __init__(
        self, proc: asyncio.subprocess.Process, decode: Callable[[bytes], E], name: str
    ) -> None:
        self._proc = proc
        self._decode = decode
        self._name = name
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @property
    def pid(self) -> int:
        """The process id."""
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, once it has exited."""
        return self._proc.returncode

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr."""
        return " | ".join(self._stderr)

    def write_line(self, line: bytes) -> bool:
        """Queue one command line; False when the process is gone."""
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(line)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def events(self) -> AsyncIterator[E]:
        """Decoded stdout events until the process closes stdout; bad lines are logged."""
        stdout = self._proc.stdout
        if stdout is None:
            return
        while True:
            try:
                line = await stdout.readline()
            except ValueError:
                log.error("%s wrote a line over %d bytes; skipped", self._name, LINE_LIMIT_BYTES)
                continue
            if not line:
                return
            try:
                yield self._decode(line)
            except ValueError as exc:
                log.warning("%s: %s", self._name, exc)

    async def _drain_stderr(self) -> None:
        stderr = self._proc.stderr
        if stderr is None:
            return
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            log.debug("%s: %s", self._name, text)

    def kill(self) -> None:
        """SIGKILL the process."""
        if self._proc.returncode is None:
            self._proc.kill()

    async def wait(self) -> int:
        """Wait for the exit and the end of its stderr."""
        code = await self._proc.wait()
        await self._stderr_task
        return code
