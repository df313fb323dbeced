"""Line batching: cut a streamed HTTP body into lines and pack them into `relay.response.lines` DMs.

`LineSplitter` turns arbitrary byte chunks into complete lines: a newline byte never occurs inside
a multi-byte UTF-8 sequence, so splitting bytes first and decoding whole lines afterwards is safe
across chunk boundaries. Lines longer than the cap are cut at a character boundary and flagged.
`Batcher` numbers lines (seq from 1) and flushes at `max_lines` lines, after `max_delay_s`, or
before a DM would pass `max_dm_b` bytes. While the caller says its previous frame is still
waiting in the transport (`hold`), the time limit is set aside: lines keep coalescing up to the
line and size caps, so a saturated link gets fewer, larger frames rather than a growing queue
of small ones (the idea of Nagle's algorithm). Both are pure: the caller passes the clock in.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.frames import Id, LineEntry, ResponseLines, encoded_size


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line of the upstream body, decoded, without its newline."""

    text: str
    truncated: bool = False


def utf8_prefix(data: bytes | bytearray, limit: int) -> bytes:
    """The longest prefix of `data` of at most `limit` bytes that does not split a character."""
    if len(data) <= limit:
        return bytes(data)
    end = limit
    # 0b10xxxxxx bytes continue a character: cutting before one would split it.
    while end > 0 and data[end] & 0xC0 == 0x80:
        end -= 1
    return bytes(data[:end])


class LineSplitter:
    """Incremental bytes → lines splitter with a per-line byte cap."""

    def __init__(self, max_line_b: int) -> None:
        """Cut lines longer than `max_line_b` bytes (the rest up to the newline is dropped)."""
        self._max = max_line_b
        self._buf = bytearray()
        self._dropping = False

    def feed(self, chunk: bytes) -> list[RawLine]:
        """Add a chunk; return the lines it completed (and any line that just hit the cap)."""
        out: list[RawLine] = []
        start = 0
        while start <= len(chunk):
            nl = chunk.find(b"\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            if not self._dropping:
                self._buf += piece
                if len(self._buf) > self._max:
                    out.extend(self._emit(utf8_prefix(self._buf, self._max), truncated=True))
                    self._buf.clear()
                    self._dropping = True
            if nl < 0:
                break
            if not self._dropping:
                out.extend(self._emit(bytes(self._buf), truncated=False))
            self._buf.clear()
            self._dropping = False
            start = nl + 1
        return out

    def finish(self) -> list[RawLine]:
        """The last line when the body did not end with a newline."""
        if self._dropping or not self._buf:
            return []
        data = bytes(self._buf)
        self._buf.clear()
        return self._emit(data, truncated=False)

    @staticmethod
    def _emit(data: bytes, *, truncated: bool) -> list[RawLine]:
        text = data.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        # Blank lines carry nothing in NDJSON and only separate events in SSE.
        return [RawLine(text, truncated)] if text.strip() else []


class Batcher:
    """Numbers lines and packs them into `ResponseLines` frames that never exceed `max_dm_b`."""

    def __init__(
        self,
        request_id: Id,
        *,
        max_lines: int,
        max_delay_s: float,
        max_dm_b: int,
        first_line_alone: bool = True,
    ) -> None:
        """Flush at `max_lines` lines or `max_delay_s` after the first pending line.

        With `first_line_alone`, line 1 goes out at once: batching then adds nothing to the
        time to first token, and saves DMs only where lines come fast.
        """
        self._first_line_alone = first_line_alone
        self._id = request_id
        self._max_lines = max_lines
        self._max_delay_s = max_delay_s
        self._max_dm_b = max_dm_b
        self._overhead = encoded_size(ResponseLines(request_id, ()))
        self._pending: list[LineEntry] = []
        self._pending_b = self._overhead
        self._first_at: float | None = None
        self.last_seq = 0
        self.truncated = False

    @property
    def deadline(self) -> float | None:
        """When the pending batch must be flushed (same clock as `now`), or None if empty."""
        return None if self._first_at is None else self._first_at + self._max_delay_s

    def add(
        self, line: RawLine, *, ts_ms: int, now: float, hold: bool = False
    ) -> list[ResponseLines]:
        """Queue one line; return the frames that are due to be sent now.

        With `hold` (the previous frame has not left yet) only the first line and full batches
        go out; the caller flushes the rest once the transport has caught up and `due()` holds.
        """
        out: list[ResponseLines] = []
        entry = self._fit(LineEntry(self.last_seq + 1, ts_ms, line.text, line.truncated))
        self.last_seq = entry.seq
        self.truncated = self.truncated or entry.truncated
        size = self._entry_size(entry)
        if self._pending and self._pending_b + 1 + size > self._max_dm_b:
            out.append(self._take())
        if not self._pending:
            self._first_at = now
        else:
            size += 1  # the comma between entries
        self._pending.append(entry)
        self._pending_b += size
        first = self._first_line_alone and entry.seq == 1
        if first or len(self._pending) >= self._max_lines or (not hold and self.due(now)):
            out.append(self._take())
        return out

    def due(self, now: float) -> bool:
        """True when the pending batch has waited `max_delay_s`."""
        deadline = self.deadline
        return deadline is not None and now >= deadline

    def flush(self) -> ResponseLines | None:
        """Take whatever is pending (at a deadline or at the end of the stream)."""
        return self._take() if self._pending else None

    def _take(self) -> ResponseLines:
        frame = ResponseLines(self._id, tuple(self._pending))
        self._pending = []
        self._pending_b = self._overhead
        self._first_at = None
        return frame

    def _entry_size(self, entry: LineEntry) -> int:
        return encoded_size(ResponseLines(self._id, (entry,))) - self._overhead

    def _fit(self, entry: LineEntry) -> LineEntry:
        """Cut a line whose escaped form alone would not fit in one DM."""
        budget = self._max_dm_b - self._overhead
        size = self._entry_size(entry)
        text = entry.line
        while size > budget and text:
            keep = max(0, min(len(text) - 1, int(len(text) * budget / size) - 16))
            text = text[:keep]
            entry = LineEntry(entry.seq, entry.ts, text, True)
            size = self._entry_size(entry)
        return entry
