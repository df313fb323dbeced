"""A relay in front of a real engine's socket that inspects each container before it starts.

The engine refuses a GPU request only at *start*, and the launcher then removes the `created`
container at once, so a test could never inspect what was created. This relay passes every byte
through unchanged, except that it holds each `POST /containers/{id}/start` until it has asked
the engine behind it for the inspect document of every container it holds (kept in
`inspected`). What the
tests read is therefore the engine's own record of the container, not what the client sent.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

import docker

START = re.compile(rb"^POST /(?:v[0-9.]+/)?containers/([^/]+)/start[ ?]")


class _Relay(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    upstream: Path
    engine: docker.APIClient
    inspected: dict[str, dict[str, Any]]

    def record(self) -> None:
        """Inspect every container the engine holds now (by id, the latest document wins)."""
        for summary in self.engine.containers(all=True):
            self.inspected[summary["Id"]] = self.engine.inspect_container(summary["Id"])


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Handler(socketserver.BaseRequestHandler):
    server: _Relay

    def handle(self) -> None:
        client: socket.socket = self.request
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(str(self.server.upstream))
        back = threading.Thread(target=_pipe, args=(up, client), daemon=True)
        back.start()
        buf = b""
        try:
            while chunk := client.recv(65536):
                buf += chunk
                # The SDK sends no body with start, so a request head is all that is held.
                match = START.match(buf)
                if match and b"\r\n\r\n" not in buf:
                    continue  # the rest of the head is on its way
                if match:
                    self.server.record()
                up.sendall(buf)
                buf = b""
        except OSError:
            pass
        finally:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            back.join(timeout=30)
            up.close()


class StartGate:
    """`with StartGate(engine_socket, path) as gate:` then point DOCKER_HOST at `gate.url`."""

    def __init__(self, upstream: Path, path: Path) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self._server = _Relay(str(path), _Handler)
        self._server.upstream = upstream
        self._server.engine = docker.APIClient(base_url=f"unix://{upstream}")
        self._server.inspected = {}
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def inspected(self) -> list[dict[str, Any]]:
        """The engine's inspect document of every container it held when a start was asked."""
        return list(self._server.inspected.values())

    def __enter__(self) -> StartGate:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.engine.close()
        self.path.unlink(missing_ok=True)
