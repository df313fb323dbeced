"""A raw HTTP/1.1 client on asyncio streams, for tests that send what real clients would not
(oversized heads, slow heads, traversal spellings no client library leaves alone)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    """One response as read off the wire; header names lower-cased."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """Read one response (Content-Length, chunked, or to EOF); IncompleteReadError if none."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    else:
        body = await reader.read()
    return RawResponse(status, headers, body)


async def exchange(port: int, data: bytes, timeout_s: float = 10.0) -> RawResponse:
    """Connect, send `data`, read one response, close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(read_response(reader), timeout_s)
    finally:
        writer.close()
        await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """Everything the server sends until it closes the connection (TimeoutError if it does not
    within `timeout_s`)."""
    chunks = []
    async with asyncio.timeout(timeout_s):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def get(path: str = "/", extra: bytes = b"") -> bytes:
    """A minimal GET request's bytes."""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"
