"""`DoorSettings`: every client-facing limit of a server, declared once, with nginx's defaults.

A service's settings class inherits it (`class ProxySettings(DoorSettings)`), so each limit is
a flag of every server we ship, shows in `--print-config` and reaches child argv, and is
declared nowhere else. The limits have flags only: each service has its own variable prefix,
and a limit an operator tunes belongs on the command line of the server it tunes.
"""

from __future__ import annotations

from farm.settings import ServiceSettings, setting

KIB = 1024
MIB = 1024 * KIB


class DoorSettings(ServiceSettings):
    """The limits every server enforces on its clients (see `farm.common.frontdoor`)."""

    max_request_line: int = setting(
        8 * KIB,
        help="bytes of the request line and of any one header line; longer: 414 or 431 "
        "(nginx large_client_header_buffers 4 8k)",
        metavar="BYTES",
        ge=256,
    )
    max_headers: int = setting(100, help="header lines per request; more: 431", metavar="N", ge=1)
    max_header_bytes: int = setting(
        32 * KIB,
        help="bytes of all header lines of a request together; more: 431",
        metavar="BYTES",
        ge=1 * KIB,
    )
    client_header_timeout: float = setting(
        60.0,
        help="seconds a client has to send a request's whole header block, from its first "
        "byte (or from connecting); then the connection is closed (nginx client_header_timeout)",
        metavar="S",
        gt=0,
    )
    client_body_timeout: float = setting(
        60.0,
        help="seconds allowed between two reads of a request body while the server waits for "
        "it; then the connection is closed (nginx client_body_timeout)",
        metavar="S",
        gt=0,
    )
    keepalive_timeout: float = setting(
        75.0,
        help="seconds an idle keep-alive connection stays open (nginx keepalive_timeout)",
        metavar="S",
        gt=0,
    )
    # Multimodal chats carry base64 images in their JSON, so the cap is above nginx's 1 MiB.
    client_max_body_size: int = setting(
        32 * MIB,
        help="bytes of a JSON request body; larger: 413 (0: no limit; uploads such as blobs "
        "are streamed and not capped by this)",
        metavar="BYTES",
        ge=0,
    )
    max_connections: int = setting(
        1024,
        help="open client connections; past it an idle keep-alive connection is closed to "
        "make room, else the new client gets 503 (also capped by ulimit -n)",
        metavar="N",
        ge=1,
    )
