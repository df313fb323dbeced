"""The `--debug` view: a live terminal table of the DMs the relay receives and sends (rich)."""

from __future__ import annotations

import json
import time
from collections import deque

from rich.console import Group
from rich.table import Table
from rich.text import Text

from relay.outlet import DmEvent

ROWS = 24


class DmView:
    """Keeps the latest DMs and renders them; pass `record` to `RelayServer(observer=...)`."""

    def __init__(self, address: str = "", rows: int = ROWS) -> None:
        """`address` is shown in the title; `rows` is how many recent DMs stay on screen."""
        self.address = address
        self._rows: deque[tuple[str, str, str, str, str, int]] = deque(maxlen=rows)
        self._counts = {"in": 0, "out": 0}
        self._bytes = {"in": 0, "out": 0}

    def record(self, event: DmEvent) -> None:
        """Remember one DM (called from the relay's loop; cheap)."""
        size = len(event.payload.encode("utf-8", "replace"))
        self._counts[event.direction] += 1
        self._bytes[event.direction] += size
        kind, rid, detail = _describe(event.payload)
        clock = time.strftime("%H:%M:%S")
        self._rows.append((clock, event.direction, _short(event.peer), kind, rid, size))
        if detail:
            self._rows[-1] = (*self._rows[-1][:3], f"{kind} {detail}", rid, size)

    def render(self) -> Group:
        """The current table, for `rich.live.Live(get_renderable=view.render)`."""
        table = Table(expand=True, title=f"NKN relay {self.address}")
        for name in ("time", "dir", "peer", "event", "id", "bytes"):
            table.add_column(name, justify="right" if name == "bytes" else "left")
        for clock, direction, peer, kind, rid, size in self._rows:
            style = "cyan" if direction == "in" else "green"
            arrow = "←" if direction == "in" else "→"
            table.add_row(clock, Text(arrow, style=style), peer, kind, rid, str(size))
        summary = Text(
            f"in: {self._counts['in']} DMs / {self._bytes['in']} B   "
            f"out: {self._counts['out']} DMs / {self._bytes['out']} B"
        )
        return Group(table, summary)


def _describe(payload: str) -> tuple[str, str, str]:
    try:
        obj = json.loads(payload)
    except ValueError:
        return "(not JSON)", "", ""
    if not isinstance(obj, dict):
        return "(not an object)", "", ""
    kind = str(obj.get("event", "?"))
    detail = ""
    if isinstance(obj.get("lines"), list):
        detail = f"×{len(obj['lines'])}"
    elif isinstance(obj.get("req"), dict):
        req = obj["req"]
        where = f"{req.get('service') or req.get('url')}{req.get('path', '')}"
        detail = f"{req.get('method', 'GET')} {where}"
    elif obj.get("error"):
        detail = f"error={obj['error']}"
    return kind, str(obj.get("id", ""))[:18], detail[:60]


def _short(address: str) -> str:
    head, _, key = address.rpartition(".")
    return f"{head + '.' if head else ''}{key[:8]}…" if len(key) > 8 else address
