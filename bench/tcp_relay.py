"""A bare TCP relay on uvloop: the floor a Python proxy could reach, for the proxy benchmark.

`python -m bench.tcp_relay --backend-port PORT --port N` pipes each client
connection to its own backend connection, byte for byte, from the protocol callbacks: no HTTP
parsing, no coroutine per request, one read and one write per chunk, back-pressure by pausing
the other side's reads. It is not a proxy (no routing, limits or disconnect handling beyond
closing both ends); the benchmark's `floor` column shows what the per-chunk Python and
syscall cost alone adds over direct. `TcpRelayServer` runs it as a child process.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Sequence

from farm.common.childserver import ChildServer, poll_until
from farm.common.net import free_port
from farm.settings import Loaded, ServiceSettings, run_main, setting, to_argv

logger = logging.getLogger(__name__)
READY_TIMEOUT_S = 20.0
# Loopback only, both ways: this is a benchmark fixture, never a server to expose.
LOOPBACK = "127.0.0.1"


class TcpRelaySettings(ServiceSettings):
    """The loopback port the relay listens on and the loopback backend port it pipes to."""

    prog = "python -m bench.tcp_relay"
    summary = "A bare TCP relay on loopback (the benchmark's floor for a Python proxy)."

    backend_port: int = setting(11434, help="backend port on loopback", ge=1, le=65535)
    port: int = setting(0, help="port to bind (0: any free port)", ge=0, le=65535)


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection; `peer` is the other side's transport."""

    def __init__(self, peer: asyncio.Transport | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer = peer
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.pending.append(data)  # the backend connection is still opening
        else:
            self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()


class _ClientSide(_Pipe):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        assert self.transport is not None
        client = self.transport
        try:
            upstream, side = await asyncio.get_running_loop().create_connection(
                lambda: _Pipe(client), self.host, self.port
            )
        except OSError as exc:
            logger.warning("backend unreachable: %s", exc)
            client.close()
            return
        side.transport = upstream  # uvloop may call connection_made a turn later
        self.peer = upstream
        for data in self.pending:
            upstream.write(data)
        self.pending = []


async def _serve(settings: TcpRelaySettings) -> None:
    loop = asyncio.get_running_loop()
    backend = settings.backend_port
    server = await loop.create_server(
        lambda: _ClientSide(LOOPBACK, backend), LOOPBACK, settings.port
    )
    logger.info("tcp relay on %s:%d -> port %d", LOOPBACK, settings.port, backend)
    async with server:
        await server.serve_forever()


def _main(loaded: Loaded[TcpRelaySettings]) -> int:
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        uvloop.run(_serve(loaded.settings))
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay until interrupted."""
    return run_main(TcpRelaySettings, _main, argv)


class TcpRelayServer(ChildServer):
    """`python -m bench.tcp_relay` in front of `backend_port` on a free loopback port."""

    def __init__(self, backend_port: int) -> None:
        super().__init__()
        self.port = free_port(LOOPBACK)
        self.url = f"http://{LOOPBACK}:{self.port}"
        settings = TcpRelaySettings(backend_port=backend_port, port=self.port)
        self.argv = [sys.executable, "-m", "bench.tcp_relay", *to_argv(settings)]

    def start(self) -> TcpRelayServer:
        """Start the process and wait until its port answers with the backend's version."""
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)

        def answers() -> bool:
            try:
                with opener.open(self.url + "/api/version", timeout=2):
                    return True
            except OSError:
                return False

        poll_until(answers, READY_TIMEOUT_S, "tcp relay did not answer")
        return self


if __name__ == "__main__":
    sys.exit(main())
