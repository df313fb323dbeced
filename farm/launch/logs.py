"""`logs`: a backend's log, shown or followed (file for processes, the engine for containers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from farm.launch import engines
from farm.launch.backend import BackendRecord
from farm.launch.children import tail
from farm.launch.errors import StateError


def _follow_file(path: Path, lines: int, follow: bool) -> Iterator[str]:
    text = tail(path, lines)
    if text:
        yield text + "\n"
    if not follow:
        return
    tick = threading.Event()
    with open(path, encoding="utf-8", errors="replace") as fh:
        fh.seek(0, 2)
        while True:
            chunk = fh.read()
            if chunk:
                yield chunk
            else:
                tick.wait(0.25)  # a log file has no change notification; poll it


def backend_logs(record: BackendRecord, lines: int = 100, follow: bool = True) -> Iterator[str]:
    """Yield the log text of one backend; StateError for a backend without accessible logs."""
    if record.kind == "container" and record.container_id:
        client = engines.connect(record.docker_host)
        cont = client.containers.get(record.container_id)
        if not follow:
            yield bytes(cont.logs(tail=lines)).decode("utf-8", errors="replace")
            return
        for chunk in cont.logs(stream=True, follow=True, tail=lines):
            yield bytes(chunk).decode("utf-8", errors="replace")
        return
    if record.log_path:
        path = Path(record.log_path)
        if not path.is_file():
            raise StateError(f"{record.name}: its log {path} is gone")
        yield from _follow_file(path, lines, follow)
        return
    raise StateError(f"{record.url} is an external backend; its logs are not ours to read")
