"""Timing profiles: a calibrated timing model in a TOML file, read by `--profile FILE`.

A profile has three tables. `[timing]` holds `SimSettings` timing fields by their own names
(`load_ms`, `decode_ms`, ...); the simulator applies them beneath flags and variables
(flag > environment > profile > default). `[measured]` says where the numbers come from
(model, backend and its version, hardware, when, probe design) and `[residuals]` how well the
fit matched each probe point; the simulator ignores both. `schema` versions the layout.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.sim.curve import parse_curve
from farm.sim.errors import ProfileError

SCHEMA = 1
#: The settings a profile may set: the timing model, nothing about the server.
TIMING_KEYS = (
    "load_ms",
    "prefill_base_ms",
    "prefill_ms_per_token",
    "prefill_delay_ms",
    "prefill_stall",
    "prefill_shared",
    "prefill_decode_shared",
    "decode_prefill_stall",
    "decode_ms",
    "batch_slowdown",
    "batch_exponent",
    "decode_curve",
    "jitter",
)
_TEXT_KEYS = frozenset({"decode_curve"})


@dataclass(frozen=True, slots=True)
class Profile:
    """One profile: the timing values, their provenance and the fit's residuals."""

    timing: Mapping[str, float | str]
    measured: Mapping[str, Any] = field(default_factory=dict)
    residuals: Mapping[str, float] = field(default_factory=dict)
    schema: int = SCHEMA


def read_profile(path: Path) -> Profile:
    """Read and check a profile; ProfileError (one line naming file and key) if it is bad."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not a TOML file ({exc})") from None
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ProfileError(f"{path}: schema {schema!r} is not {SCHEMA}; calibrate again")
    timing = data.get("timing")
    if not isinstance(timing, dict) or not timing:
        raise ProfileError(f"{path}: needs a [timing] table (e.g. decode_ms = 25.0)")
    return Profile(
        timing={key: _timing_value(path, key, value) for key, value in timing.items()},
        measured=_table(data, "measured"),
        residuals={k: float(v) for k, v in _table(data, "residuals").items() if _number(v)},
        schema=SCHEMA,
    )


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    table = data.get(name, {})
    return dict(table) if isinstance(table, dict) else {}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timing_value(path: Path, key: str, value: object) -> float | str:
    if key not in TIMING_KEYS:
        raise ProfileError(
            f"{path}: [timing] {key} is not a timing setting (known: {', '.join(TIMING_KEYS)})"
        )
    if key in _TEXT_KEYS:
        if not isinstance(value, str):
            raise ProfileError(f'{path}: [timing] {key} must be a string like "1:25,2:30"')
        try:
            parse_curve(value)
        except ValueError as exc:
            raise ProfileError(f"{path}: [timing] {key}: {exc}") from None
        return value
    if not _number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ProfileError(f"{path}: [timing] {key} must be a number, not {value!r}")
    return float(value)  # type: ignore[arg-type]


def write_profile(path: Path, profile: Profile, header: str = "") -> None:
    """Write `profile` as TOML (`header` becomes comment lines at the top)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"schema = {profile.schema}", ""]
    for name, table in (
        ("measured", profile.measured),
        ("timing", profile.timing),
        ("residuals", profile.residuals),
    ):
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(float(f"{value:.6g}")) if math.isfinite(value) else f"{value:+}"[:4]
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON's string escapes (\", \\, \n, \uXXXX) are TOML's basic-string escapes; other text
    # stays raw, since JSON would write a character beyond U+FFFF as a surrogate pair, which
    # TOML refuses.
    return json.dumps(str(value), ensure_ascii=False)
