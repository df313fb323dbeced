"""The fast path's pending items: what waits for a peer's next `relay.mux` message, packed tight.

A stream's consecutive lines join its last pending `lines` item, so one window carries one
item (one id, one `seq`) per stream however many chunks the upstream sent; a line too big for
a message alone is cut and flagged. `take` fills a message up to its byte budget, oldest items
first, so each stream's items keep their order. Sizes are the encoded ones, kept as items
are added (a message is never encoded twice to be measured). Pure: the caller passes the clock.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from relay.batcher import RawLine, utf8_prefix
from relay.muxframes import MuxId, MuxItem, MuxLines, item_size

#: Bytes of a message's own fields and an item's keys, kept free of lines.
ITEM_OVERHEAD_B = 512


@dataclass(slots=True)
class _Entry:
    """An item waiting for the next message, and its encoded size."""

    item: MuxItem
    size_b: int


class Pending:
    """One peer's items waiting to be sent, with their total encoded size."""

    def __init__(self, max_message_b: int) -> None:
        """Items are packed into messages of at most `max_message_b` bytes."""
        self._max_b = max_message_b
        self._entries: deque[_Entry] = deque()
        # Each stream's last pending item, while it is a `lines` one: new lines join it.
        self._tails: dict[MuxId, _Entry] = {}
        self.size_b = 0
        self.first_at: float | None = None
        self.urgent = False

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def full(self) -> bool:
        """Whether a whole message is waiting."""
        return self.size_b >= self._max_b

    def add(self, item: MuxItem, *, urgent: bool, now: float) -> None:
        """Queue an item; `urgent` ones make the next message leave at once."""
        if not self._entries:
            self.first_at = now
        tail = self._tails.pop(item.id, None)
        if not (isinstance(item, MuxLines) and tail is not None and self._join(tail, item)):
            tail = _Entry(item, item_size(item))
            self._entries.append(tail)
            self.size_b += tail.size_b
        if isinstance(tail.item, MuxLines):
            self._tails[item.id] = tail
        self.urgent = self.urgent or urgent

    def take(self, room_b: int, now: float) -> tuple[tuple[MuxItem, ...], int]:
        """The oldest items that fit in `room_b` bytes (at least one) and their size."""
        taken: list[MuxItem] = []
        used = 0
        while self._entries:
            entry = self._entries[0]
            if taken and used + 1 + entry.size_b > room_b:
                break
            used += entry.size_b + (1 if taken else 0)
            taken.append(entry.item)
            self._entries.popleft()
            self.size_b -= entry.size_b
            if self._tails.get(entry.item.id) is entry:
                del self._tails[entry.item.id]
        self.urgent = False
        self.first_at = now if self._entries else None
        return tuple(taken), used

    def clear(self) -> None:
        """Forget everything (the peer is gone)."""
        self._entries.clear()
        self._tails.clear()
        self.size_b = 0
        self.first_at = None

    def line_items(self, rid: MuxId, seq: int, lines: Sequence[RawLine]) -> list[MuxLines]:
        """Lines numbered from `seq` as items that each fit in one message."""
        budget = self._max_b - ITEM_OVERHEAD_B
        items: list[MuxLines] = []
        texts: list[str] = []
        cut: list[int] = []
        start, size = seq, 0
        for offset, line in enumerate(lines):
            text, truncated = _fit(line, budget)
            grown = len(json.dumps(text, ensure_ascii=False).encode()) + 1
            if texts and size + grown > budget:
                items.append(MuxLines(rid, start, tuple(texts), tuple(cut)))
                texts, cut, size, start = [], [], 0, seq + offset
            texts.append(text)
            size += grown
            if truncated:
                cut.append(seq + offset)
        if texts:
            items.append(MuxLines(rid, start, tuple(texts), tuple(cut)))
        return items

    def _join(self, tail: _Entry, item: MuxLines) -> bool:
        """Append `item`'s lines to the stream's pending `tail` item if they follow and fit."""
        last = tail.item
        if not isinstance(last, MuxLines) or last.seq + len(last.lines) != item.seq:
            return False
        merged = MuxLines(item.id, last.seq, last.lines + item.lines, last.cut + item.cut)
        if item.cut or last.cut:
            grown = item_size(merged) - tail.size_b
        else:  # the new lines' own bytes and a comma: no need to encode the whole item again
            grown = item_size(item) - item_size(MuxLines(item.id, item.seq, ())) + 1
        if tail.size_b + grown > self._max_b - ITEM_OVERHEAD_B:
            return False
        tail.item = merged
        tail.size_b += grown
        self.size_b += grown
        return True


def _fit(line: RawLine, budget: int) -> tuple[str, bool]:
    """The line, cut to fit one message alone if it must be (JSON escapes at most 6x)."""
    data = line.text.encode()
    if len(data) * 6 <= budget or item_size(MuxLines(0, 1, (line.text,))) <= budget:
        return line.text, line.truncated
    return utf8_prefix(data, budget // 6).decode("utf-8", "replace"), True
