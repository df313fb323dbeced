"""The seam between the relay and the NKN network: a `Transport` delivers direct messages.

The real implementation drives the official `nkn-sdk` through a Node bridge process
(`relay.bridge`); tests may use an in-memory one. The relay engine and the peer client see only
this protocol, so they never know which network carries their frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, TypeAlias

#: A DM the transport accepted but has not handed to the network yet: done once it has (or once
#: the transport gave up on it). Senders use it as backpressure, e.g. to coalesce lines.
Sending: TypeAlias = asyncio.Future[None]
#: The destination's delivery ACK for one DM (nkn-sdk receivers send one unless told not to):
#: True once it came, False once the network says it never will (the send failed for good, or
#: the SDK stopped waiting). Cancelled when the transport lost track of it (a restarted NKN
#: bridge); it may also never complete, so whoever asks for it keeps their own deadline.
Acked: TypeAlias = asyncio.Future[bool]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One direct message as received: who sent it and its text payload (a JSON frame)."""

    src: str
    payload: str


class Transport(Protocol):
    """Sends and receives NKN direct messages for one identity (one NKN address)."""

    @property
    def address(self) -> str:
        """This identity's NKN address (`identifier.pubkeyhex`); valid after `start()`."""
        ...

    async def start(self) -> str:
        """Connect; return the address once the network has accepted this client."""
        ...

    async def send(self, dest: str, payload: str, *, ack: Acked | None = None) -> Sending | None:
        """Send one direct message without waiting for a reply (fire and forget).

        Returns at once. A transport that queues may return a `Sending` future that completes
        when the DM has left; None means it already has. With `ack`, this DM asks the
        destination for its delivery ACK and the transport completes `ack` (see `Acked`).
        """
        ...

    def incoming(self) -> AsyncIterator[Incoming]:
        """Messages addressed to this identity, in arrival order."""
        ...

    async def close(self) -> None:
        """Disconnect and release every resource (processes, sockets)."""
        ...
