"""The front door's settings, descriptor budget and body cap middleware, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from farm.common.frontdoor import BodyLimit, DoorSettings, fds
from farm.settings import specs


def test_every_limit_is_a_flag_with_an_nginx_like_default() -> None:
    flags = {s.flag: s.default for s in specs(DoorSettings)}
    assert flags == {
        "--max-request-line": 8192,
        "--max-headers": 100,
        "--max-header-bytes": 32768,
        "--client-header-timeout": 60.0,
        "--client-body-timeout": 60.0,
        "--keepalive-timeout": 75.0,
        "--client-max-body-size": 32 * 2**20,
        "--max-connections": 1024,
    }
    assert all(s.env == () for s in specs(DoorSettings))


@pytest.mark.parametrize(
    ("soft", "hard", "cap", "raised_to"),
    [
        (1024, 1024, 896, None),  # no room to raise: the cap leaves an eighth in reserve
        (1024, 1_048_576, 1024, 2112),  # raised as far as the cap needs
        (256, 256, 192, None),  # at least 64 in reserve
    ],
)
def test_the_connection_cap_fits_the_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, cap: int, raised_to: int | None
) -> None:
    raised: list[int] = []
    monkeypatch.setattr(fds.resource, "getrlimit", lambda _: (soft, hard))
    monkeypatch.setattr(fds.resource, "setrlimit", lambda _, limits: raised.append(limits[0]))
    assert fds.connection_cap(1024) == cap
    assert raised == ([] if raised_to is None else [raised_to])


async def _run(app: BodyLimit, path: str, headers: list, chunks: list[bytes]) -> dict[str, Any]:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers}
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": sent[0]["status"], "body": body}


async def _echo_length(scope: Any, receive: Any, send: Any) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"%d" % size})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "headers", "chunks", "status"),
    [
        ("/api/chat", [(b"content-length", b"11")], [b"x" * 11], 413),
        ("/api/chat", [], [b"x" * 6, b"x" * 5], 413),
        ("/api/chat", [], [b"x" * 6, b"x" * 4], 200),
        ("/api/chat", [(b"content-length", b"10")], [b"x" * 10], 200),
        ("/api/blobs/sha256:0", [], [b"x" * 600], 200),
    ],
    ids=["length-over", "chunked-over", "chunked-under", "length-at-cap", "unlimited-prefix"],
)
async def test_body_limit_answers_413_in_ollama_shape(path, headers, chunks, status) -> None:
    app = BodyLimit(_echo_length, 10, unlimited=("/api/blobs/",))
    result = await _run(app, path, headers, chunks)
    assert result["status"] == status
    if status == 413:
        assert "--client-max-body-size" in json.loads(result["body"])["error"]
    else:
        assert result["body"] == b"%d" % sum(map(len, chunks))
