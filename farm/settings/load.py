"""Loading settings: flags over environment over `.env` over defaults, with provenance.

`load()` is the one place where the command line, the environment and a `.env` file meet
a settings class. Every value remembers where it came from, for `--print-config` and for
errors, which name the flag or variable that carried the bad value.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from dotenv import dotenv_values
from pydantic import ValidationError

from farm.settings.argv import parse_flags, render
from farm.settings.declare import ServiceSettings, SettingSpec, specs
from farm.settings.errors import SettingsError

S = TypeVar("S", bound=ServiceSettings)
REDACTED = "********"


def process_environ() -> dict[str, str]:
    """A copy of this process's environment: the only read of `os.environ` in the project."""
    return dict(os.environ)


@dataclass(frozen=True, slots=True)
class Loaded(Generic[S]):
    """Settings plus, per field, where its value came from (`default`, `env X`, ...)."""

    settings: S
    origins: Mapping[str, str]
    warnings: tuple[str, ...] = ()
    print_config: bool = False
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)


def _env_value(spec: SettingSpec, text: str, origin: str) -> object:
    if spec.from_env is not None:
        try:
            return spec.from_env(text)
        except ValueError as exc:
            raise SettingsError(f"{origin}={text!r}: {exc}") from exc
    if spec.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _lookup(spec: SettingSpec, source: Mapping[str, str | None]) -> tuple[str, str] | None:
    for key in spec.env:
        text = source.get(key)
        if text is not None and text.strip() != "":
            return key, text.strip()
    return None


def _dotenv(
    cls: type[ServiceSettings], given: Mapping[str, object], environ: Mapping[str, str]
) -> tuple[Path | None, dict[str, str | None]]:
    """(path, values) of the service's `.env`, or (None, {}) when it reads none."""
    name = cls.env_file_setting
    if name is None:
        return None, {}
    spec = next(s for s in specs(cls) if s.name == name)
    found = _lookup(spec, environ)
    raw = given.get(name, found[1] if found else spec.default)
    path = Path(str(raw)) if raw else None
    if path is None or not path.is_file():
        return path, {}
    try:
        return path, dict(dotenv_values(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read ({exc})") from exc


def load(
    cls: type[S],
    argv: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Loaded[S]:
    """Build `cls` from `argv` and `environ` (default: this process's), and its `.env`.

    Precedence: flag > environment > `.env` > default. Raises SettingsError (one line).
    """
    environ = process_environ() if environ is None else environ
    given, warnings, show = parse_flags(cls, argv)
    env_path, dotenv = _dotenv(cls, given, environ)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    labels: dict[str, tuple[str, object]] = {}
    for spec in specs(cls):
        if spec.name in given:
            values[spec.name] = given[spec.name]
            flag = spec.flag or spec.name
            origins[spec.name] = f"flag {flag}"
            labels[spec.name] = (flag, given[spec.name])
        elif found := _lookup(spec, environ):
            values[spec.name] = _env_value(spec, found[1], found[0])
            origins[spec.name] = f"env {found[0]}"
            labels[spec.name] = (found[0], found[1])
        elif found := _lookup(spec, dotenv):
            values[spec.name] = _env_value(spec, found[1], f"{env_path}: {found[0]}")
            origins[spec.name] = f".env {found[0]} ({env_path})"
            labels[spec.name] = (f"{found[0]} in {env_path}", found[1])
        else:
            origins[spec.name] = "default"
    settings = validate(cls, values, labels)
    return Loaded(settings, origins, tuple(warnings), show, environ)


def validate(
    cls: type[S], values: Mapping[str, Any], labels: Mapping[str, tuple[str, object]] | None = None
) -> S:
    """`cls(**values)`, with pydantic's errors turned into one line naming the setting."""
    try:
        return cls.model_validate(dict(values))
    except ValidationError as exc:
        raise SettingsError(_one_line(cls, exc, labels or {})) from None


def _one_line(
    cls: type[ServiceSettings], exc: ValidationError, labels: Mapping[str, tuple[str, object]]
) -> str:
    error = exc.errors(include_url=False)[0]
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    loc = error.get("loc") or ()
    if not loc or loc[0] not in cls.model_fields:
        return message
    name = str(loc[0])
    spec = next(s for s in specs(cls) if s.name == name)
    if error.get("type") == "missing":
        return f"{spec.label}: required ({spec.help})"
    label, value = labels.get(name, (spec.label, error.get("input")))
    shown = REDACTED if spec.secret else _shown(value)
    return f"{label} {shown}: {message}"


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else repr(render(value))


def child_env(settings: ServiceSettings) -> dict[str, str]:
    """Variables for a child's environment: secrets and settings with no flag, when set.

    Together with `to_argv(settings)`, loading them again reproduces `settings`.
    """
    env: dict[str, str] = {}
    for spec in specs(type(settings)):
        value = getattr(settings, spec.name)
        if not spec.env or value is None or value == spec.default:
            continue
        if spec.secret or (spec.flag is None and not spec.positional):
            env[spec.env[0]] = render(value)
    return env


def describe(loaded: Loaded[Any]) -> list[str]:
    """`--print-config`: one line per setting, `name = value  (origin)`, secrets redacted."""
    rows = []
    for spec in specs(type(loaded.settings)):
        value = getattr(loaded.settings, spec.name)
        shown = REDACTED if spec.secret and value else render(value) if value is not None else "-"
        rows.append((spec.name, shown, loaded.origins.get(spec.name, "default")))
    width = max((len(name) for name, _, _ in rows), default=0)
    return [f"{name.ljust(width)} = {shown}  ({origin})" for name, shown, origin in rows]


def run_main(
    cls: type[S],
    main: Callable[[Loaded[S]], int],
    argv: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """A service's `__main__`: load settings, honour `--print-config`, run `main`.

    A bad setting prints one line (`prog: error: ...`) and returns 2, never a traceback.
    """
    prog = cls.prog or cls.__name__
    try:
        loaded = load(cls, sys.argv[1:] if argv is None else argv, environ)
    except SettingsError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    for warning in loaded.warnings:
        sys.stderr.write(f"{prog}: warning: {warning}\n")
    if loaded.print_config:
        sys.stdout.write("\n".join(describe(loaded)) + "\n")
        return 0
    return main(loaded)
