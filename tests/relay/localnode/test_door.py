"""`HeadMeter`, the door's measure of a request head, fed the way a socket may split it."""

from __future__ import annotations

import pytest

from farm.common.frontdoor.door import DoorLimits
from relay.localnode.door import HeadMeter
from relay.localnode.errors import HeadRefused
from relay.localnode.settings import LocalNodeSettings

SETTINGS = LocalNodeSettings(max_request_line=256, max_headers=5, max_header_bytes=1024)
LIMITS = DoorLimits.of(SETTINGS, max_connections=1)
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"


def feed_in(chunks: list[bytes]) -> int | None:
    """Feed `chunks` to a fresh meter: the offset of the head's end in the last one, or None."""
    meter = HeadMeter(LIMITS)
    end = None
    for chunk in chunks:
        end = meter.feed(chunk)
        if end is not None:
            return end
    return end


@pytest.mark.parametrize(
    "chunks",
    [
        [HEAD + b"body"],
        [bytes([b]) for b in HEAD],
        [HEAD[: HEAD.index(b"\r\n\r\n") + 1], HEAD[HEAD.index(b"\r\n\r\n") + 1 :] + b"body"],
    ],
    ids=["whole", "byte-by-byte", "crlf-split"],
)
def test_the_head_ends_at_its_blank_line_however_it_is_split(chunks: list[bytes]) -> None:
    end = feed_in(chunks)
    assert end is not None
    assert chunks[-1][end:] in (b"body", b"")


def test_bare_lf_lines_and_a_leading_blank_line_are_read_as_http_allows() -> None:
    assert feed_in([b"\r\nGET / HTTP/1.1\nHost: x\n\nrest"]) == len(
        b"\r\nGET / HTTP/1.1\nHost: x\n\n"
    )


def test_an_incomplete_head_is_not_finished() -> None:
    assert feed_in([b"GET / HTTP/1.1\r\nHost: x\r\n"]) is None


@pytest.mark.parametrize(
    ("chunks", "status", "why"),
    [
        ([b"GET /" + b"a" * 300], 414, "request line is longer than 256 bytes"),
        ([b"GET / HTTP/1.1\r\nX: ", b"v" * 270], 431, "a header line is longer than 256 bytes"),
        ([b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 6], 431, "more than 5 header lines"),
        (
            [b"GET / HTTP/1.1\r\n", *[b"X: " + b"v" * 245 + b"\r\n"] * 5],
            431,
            "headers are larger than 1024 bytes in all",
        ),
    ],
    ids=["request-line", "header-line", "header-count", "header-bytes"],
)
def test_a_bound_passed_is_refused_at_once(chunks: list[bytes], status: int, why: str) -> None:
    with pytest.raises(HeadRefused) as refused:
        feed_in(chunks)
    assert refused.value.status == status
    assert str(refused.value).startswith(why)


def test_exactly_max_headers_with_the_blank_line_split_off_is_a_whole_head() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 5
    assert feed_in([head, b"\r", b"\n"]) == 1
