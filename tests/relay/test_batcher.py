"""Line splitting and batching: boundaries, caps, flush rules, and the DM size limit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.batcher import Batcher, LineSplitter, RawLine, utf8_prefix
from relay.frames import encoded_size

# Decoded upstream text never holds lone surrogates (bytes are decoded with "replace").
TEXT_CHARS = st.characters(blacklist_categories=("Cs",))
LINE_CHARS = st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",))
TEXT = '{"response":"héllo wörld 🦙 ✓"}\n{"response":"二"}\r\n\n{"done":true}'


def _split(data: bytes, cuts: list[int], cap: int = 1 << 20) -> list[RawLine]:
    splitter = LineSplitter(cap)
    out: list[RawLine] = []
    last = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out += splitter.feed(data[last:cut])
        last = cut
    return out + splitter.finish()


def test_lines_survive_every_chunk_boundary_including_inside_characters() -> None:
    data = TEXT.encode()
    expected = [
        RawLine(t)
        for t in ['{"response":"héllo wörld 🦙 ✓"}', '{"response":"二"}', '{"done":true}']
    ]
    for cut in range(len(data) + 1):
        assert _split(data, [cut]) == expected, cut


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet=LINE_CHARS, min_size=1),
        max_size=8,
    ),
    st.lists(st.integers(0, 400), max_size=10),
)
def test_any_chunking_gives_the_same_lines(lines: list[str], cuts: list[int]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    got = _split(data, [c for c in cuts if c <= len(data)])
    assert got == [RawLine(line) for line in lines if line.strip()]


def test_long_line_is_cut_at_a_character_boundary_and_the_rest_dropped() -> None:
    data = ("ü" * 100 + "\nnext\n").encode()
    lines = _split(data, [7, 50, 120], cap=51)
    assert lines[0] == RawLine("ü" * 25, truncated=True)
    assert lines[1] == RawLine("next")


def test_utf8_prefix_never_splits_a_character() -> None:
    data = "a🦙b".encode()
    assert [utf8_prefix(data, n) for n in range(7)] == [
        b"",
        b"a",
        b"a",
        b"a",
        b"a",
        "a🦙".encode(),
        "a🦙b".encode(),
    ]


def _batcher(**kw: object) -> Batcher:
    options = {"max_lines": 24, "max_delay_s": 0.08, "max_dm_b": 3_500_000} | kw
    options.setdefault("first_line_alone", False)
    return Batcher("id", **options)  # type: ignore[arg-type]


def test_the_first_line_goes_out_alone_so_batching_adds_nothing_to_ttft() -> None:
    batcher = _batcher(first_line_alone=True)
    frames = [f for i in range(30) for f in batcher.add(RawLine(str(i)), ts_ms=0, now=0.0)]
    assert [[e.seq for e in f.lines][:1] for f in frames] == [[1], [2]]
    assert [len(f.lines) for f in frames] == [1, 24]


def test_flushes_at_24_lines() -> None:
    batcher = _batcher()
    frames = []
    for i in range(50):
        frames += batcher.add(RawLine(f"l{i}"), ts_ms=i, now=0.0)
    assert [len(f.lines) for f in frames] == [24, 24]
    tail = batcher.flush()
    assert tail is not None and [e.seq for e in tail.lines] == [49, 50]


def test_flushes_when_the_first_pending_line_is_80_ms_old() -> None:
    batcher = _batcher()
    assert batcher.add(RawLine("a"), ts_ms=0, now=10.0) == []
    assert batcher.deadline == pytest.approx(10.08)
    assert not batcher.due(10.079) and batcher.due(10.08)
    frames = batcher.add(RawLine("b"), ts_ms=0, now=10.09)
    assert [[e.line for e in f.lines] for f in frames] == [["a", "b"]]


def test_batching_off_sends_one_line_per_dm() -> None:
    batcher = _batcher(max_lines=1, max_delay_s=0.0)
    frames = [f for i in range(5) for f in batcher.add(RawLine(str(i)), ts_ms=0, now=0.0)]
    assert [len(f.lines) for f in frames] == [1] * 5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=TEXT_CHARS, max_size=3000), min_size=1, max_size=12),
    st.integers(4096, 9000),
)
def test_no_dm_ever_exceeds_the_limit_and_seqs_are_consecutive(texts: list[str], limit: int):
    batcher = _batcher(max_dm_b=limit)
    frames = [f for t in texts for f in batcher.add(RawLine(t), ts_ms=1, now=0.0)]
    tail = batcher.flush()
    frames += [tail] if tail else []
    assert all(encoded_size(f) <= limit for f in frames)
    entries = [e for f in frames for e in f.lines]
    assert [e.seq for e in entries] == list(range(1, len(texts) + 1))
    for entry, text in zip(entries, texts, strict=True):
        assert text.startswith(entry.line) and entry.truncated == (entry.line != text)


def test_a_line_that_escapes_past_the_dm_limit_is_cut() -> None:
    batcher = _batcher(max_dm_b=5000)
    line = json.dumps({"s": '"' * 4000})  # every quote doubles when escaped
    frames = batcher.add(RawLine(line), ts_ms=0, now=0.0)
    frame = frames[0] if frames else batcher.flush()
    assert frame is not None and encoded_size(frame) <= 5000
    assert frame.lines[0].truncated and batcher.truncated


def test_hold_sets_the_time_limit_aside_but_not_the_first_line_or_the_cap() -> None:
    # The previous frame is still in the transport: lines past their 80 ms coalesce instead.
    batcher = _batcher(first_line_alone=True, max_lines=4)
    first = batcher.add(RawLine("1"), ts_ms=0, now=0.0, hold=True)
    assert [[e.seq for e in f.lines] for f in first] == [[1]]
    held = [f for i in (2, 3) for f in batcher.add(RawLine(str(i)), ts_ms=0, now=0.0, hold=True)]
    held += batcher.add(RawLine("4"), ts_ms=0, now=5.0, hold=True)  # long past 80 ms
    assert held == [] and batcher.due(5.0)
    full = batcher.add(RawLine("5"), ts_ms=0, now=5.0, hold=True)
    assert [[e.seq for e in f.lines] for f in full] == [[2, 3, 4, 5]]


def test_without_hold_a_late_line_flushes_at_once() -> None:
    batcher = _batcher(max_lines=4)
    assert batcher.add(RawLine("a"), ts_ms=0, now=0.0, hold=True) == []
    frames = batcher.add(RawLine("b"), ts_ms=0, now=1.0, hold=False)
    assert [[e.line for e in f.lines] for f in frames] == [["a", "b"]]
