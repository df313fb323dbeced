"""Port pre-flight: is a TCP port free to bind, and if not, who holds it."""

from __future__ import annotations

import errno
import socket

import psutil

from farm.launch.errors import PortInUse


def owner(port: int) -> str | None:
    """`name (pid N)` of the process listening on `port`, when it can be found."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "another user's process"
            try:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def ensure_free(host: str, port: int, flag: str) -> None:
    """Raise PortInUse naming the holder if `host:port` cannot be bound right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same as the servers we start (uvicorn, Go's net.Listen): TIME_WAIT is not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                msg = f"{flag} {port}: cannot bind {host}:{port} ({exc.strerror})"
                raise PortInUse(msg) from exc
            who = owner(port)
            held = f" by {who}" if who else ""
            raise PortInUse(
                f"{flag} {port}: port already in use{held}; stop it or choose another port"
            ) from exc
