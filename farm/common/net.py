"""Addresses and ports: is a host or URL on loopback, and which port is free right now."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """True for `localhost` (and `*.localhost`) and loopback IP literals (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is on loopback (see `is_loopback_host`)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return bool(host) and is_loopback_host(host or "")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (callers accept the small race)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
