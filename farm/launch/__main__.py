"""`python -m farm`: start (`up`, the default), stop (`down`), inspect (`status`) or follow the
logs (`logs`) of a farm.

Each verb has its own settings class (`farm.launch.settings`); the verb is split off argv and
the rest is loaded by the settings layer, so `--help` and `--print-config` work per verb. Any
error is one line (`python -m farm up: error: ...`): exit 2 for a bad setting, 1 for a failure.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from farm.launch import lifecycle, state, status
from farm.launch.errors import ConfigError, FarmError, StateError
from farm.launch.logs import backend_logs
from farm.launch.settings import DownSettings, LogsSettings, StatusSettings, UpSettings
from farm.settings import Loaded, ServiceSettings, run_main


def _up(loaded: Loaded[UpSettings]) -> int:
    lifecycle.up(loaded.settings, Path.cwd(), loaded.environ)
    return 0


def _down(loaded: Loaded[DownSettings]) -> int:
    stopped = lifecycle.down(loaded.settings.state_dir)
    print("\n".join(f"stopped {s}" for s in stopped) or "no farm was running")
    return 0


def _status(loaded: Loaded[StatusSettings]) -> int:
    record = state.load(loaded.settings.state_dir)
    if record is None:
        print("no farm is running (no state file)")
        return 1
    report = status.collect(record)
    print("\n".join(status.render(report)))
    return 0 if report.healthy else 1


def _logs(loaded: Loaded[LogsSettings]) -> int:
    settings = loaded.settings
    record = state.load(settings.state_dir)
    if record is None:
        raise StateError("no farm is running (no state file)")
    if settings.replica > len(record.backends):
        raise ConfigError(f"--replica {settings.replica}: the farm has {len(record.backends)}")
    backend = record.backends[settings.replica - 1]
    for chunk in backend_logs(backend, settings.tail, settings.follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    return 0


VERBS: dict[str, tuple[type[ServiceSettings], Callable[[Any], int]]] = {
    "up": (UpSettings, _up),
    "down": (DownSettings, _down),
    "status": (StatusSettings, _status),
    "logs": (LogsSettings, _logs),
}


def split_verb(argv: Sequence[str]) -> tuple[str, list[str]]:
    """(`verb`, rest); no verb means `up`, as in the seed launcher."""
    if argv and argv[0] in VERBS:
        return argv[0], list(argv[1:])
    return "up", list(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point: configure logging, run one verb, turn farm errors into one line."""
    logging.basicConfig(level=logging.INFO, format="farm: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    verb, rest = split_verb(sys.argv[1:] if argv is None else argv)
    cls, body = VERBS[verb]
    try:
        return run_main(cls, body, rest, environ)
    except ConfigError as exc:
        print(f"{cls.prog}: error: {exc}", file=sys.stderr)
        return 2
    except FarmError as exc:
        print(f"{cls.prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
