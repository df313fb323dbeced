"""Go duration syntax and Ollama's `keep_alive` rules, shared by settings and routes.

A keep-alive is a float of seconds: `math.inf` means "forever" (any negative value in Ollama),
0 means "unload as soon as idle".
"""

from __future__ import annotations

import math
import re

from farm.sim.errors import BadRequest

_UNITS_S = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
FOREVER = math.inf


def parse_go_duration(text: str) -> float:
    """Parse a Go `time.ParseDuration` string ("1h30m", "-1m", "0") into seconds.

    Raises ValueError with Go's message, which Ollama forwards verbatim as a 400.
    """
    quoted = '"' + text + '"'
    body = text
    sign = 1.0
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            if re.fullmatch(r"[\d.]+", body[pos:]):
                raise ValueError(f"time: missing unit in duration {quoted}")
            unit = re.match(r"[\d.]*([^\d.]+)", body[pos:])
            if unit and re.match(r"[\d.]+", body[pos:]):
                raise ValueError(
                    f"time: unknown unit {_go_quote(unit.group(1))} in duration {quoted}"
                )
            raise ValueError(f"time: invalid duration {quoted}")
        total += float(match.group(1)) * _UNITS_S[match.group(2)]
        pos = match.end()
    return sign * total


def _go_quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def keep_alive_from_json(value: object) -> float | None:
    """Turn a request's `keep_alive` (number of seconds or duration string) into seconds.

    None means the field was absent or null; negative values become FOREVER. A bare number in
    a string is a 400 with Go's "missing unit" message, as in Ollama.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest("Unsupported type: 'bool'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_go_duration(value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
    else:
        # api.Duration's own decoder reports the Go type of the value it got.
        kind = "[]interface {}" if isinstance(value, list) else "map[string]interface {}"
        raise BadRequest(f"Unsupported type: '{kind}'")
    return FOREVER if seconds < 0 else seconds


def keep_alive_from_env(text: str) -> float:
    """`OLLAMA_KEEP_ALIVE` (and `--keep-alive`): a duration string or a number of seconds.

    Ollama takes whole seconds; a fraction is accepted too, so that any value the simulator
    holds can be written back. Negative means forever; NaN is refused.
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = parse_go_duration(text)
    if math.isnan(seconds):
        raise ValueError("not a number of seconds")
    return FOREVER if seconds < 0 else seconds
