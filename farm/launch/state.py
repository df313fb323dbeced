"""The farm's state file, `.farm/state.json`: what `up` started, for `down`, `status`, `logs`.

Written atomically once everything is ready (and in foreground mode removed on shutdown). A
state file whose launcher, proxy and backends are all gone is stale and may be replaced.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from farm.launch import children
from farm.launch.backend import BackendRecord
from farm.launch.errors import StateError

SCHEMA = 1


@dataclass(frozen=True, slots=True)
class FarmState:
    """Everything needed to find a running farm again."""

    mode: str
    model: str
    num_parallel: int
    front_url: str
    backends: tuple[BackendRecord, ...]
    launcher_pid: int
    launcher_create_time: float | None
    detach: bool
    proxy_pid: int | None = None
    proxy_create_time: float | None = None
    proxy_log: str | None = None
    started_at: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def encode(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def decode(cls, text: str) -> FarmState:
        """Parse; StateError when the file is not ours or is corrupt."""
        try:
            data = json.loads(text)
            if data.get("schema") != SCHEMA:
                raise StateError(f"state file schema {data.get('schema')!r} is not {SCHEMA}")
            data["backends"] = tuple(BackendRecord(**b) for b in data["backends"])
            return cls(**data)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise StateError(f"state file is corrupt ({exc})") from exc

    def anything_alive(self) -> bool:
        """True if the launcher, the proxy or any started backend process still runs."""
        pids = [
            (self.launcher_pid, self.launcher_create_time),
            (self.proxy_pid, self.proxy_create_time),
        ]
        pids += [(b.pid, b.pid_create_time) for b in self.backends if b.pid]
        if any(children.find(pid, ct) for pid, ct in pids if pid != os.getpid()):
            return True
        return any(b.kind == "container" for b in self.backends)


def path_of(state_dir: Path) -> Path:
    """`<state_dir>/state.json`."""
    return state_dir / "state.json"


def load(state_dir: Path) -> FarmState | None:
    """The recorded farm, or None when there is no state file."""
    try:
        text = path_of(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path_of(state_dir)}: {exc.strerror}") from exc
    return FarmState.decode(text)


def save(state_dir: Path, state: FarmState) -> None:
    """Write atomically (temp file + rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path_of(state_dir).with_suffix(".tmp")
    tmp.write_text(state.encode(), encoding="utf-8")
    tmp.replace(path_of(state_dir))


def remove(state_dir: Path) -> None:
    """Delete the state file if present."""
    path_of(state_dir).unlink(missing_ok=True)
