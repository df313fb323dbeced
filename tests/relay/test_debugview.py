"""The `--debug` view renders recent DMs with direction, event, id and size."""

from __future__ import annotations

import json

from rich.console import Console

from relay.debugview import DmView
from relay.outlet import DmEvent


def test_view_lists_recent_dms_and_totals() -> None:
    view = DmView("relay." + "ab" * 32, rows=3)
    peer = "peer." + "cd" * 32
    http = {"service": "ollama", "path": "/api/generate", "method": "POST"}
    request = json.dumps({"event": "relay.http", "id": "r1", "req": http})
    lines = json.dumps({"event": "relay.response.lines", "id": "r1", "lines": [{}, {}]})
    view.record(DmEvent("in", peer, request, 0.0))
    view.record(DmEvent("out", peer, lines, 0.1))
    view.record(DmEvent("in", peer, "garbage", 0.2))
    console = Console(width=160, record=True)
    console.print(view.render())
    text = console.export_text()
    assert "relay.http POST ollama/api/generate" in text
    assert "relay.response.lines ×2" in text and "(not JSON)" in text
    assert "in: 2 DMs" in text and "out: 1 DMs" in text
