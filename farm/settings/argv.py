"""The command-line face of a settings class: its argparse parser, and the argv of a child.

`parser_for(cls)` builds the parser from the declarations alone; `to_argv(settings)` renders
settings back into a list of arguments such that loading them again gives equal settings
(with `child_env` carrying what argv must not: secrets and environment-only settings).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from enum import Enum
from pathlib import PurePath
from typing import Any, NoReturn

from farm.settings.declare import ServiceSettings, SettingSpec, specs
from farm.settings.errors import SettingsError

PRINT_CONFIG = "--print-config"
_DEPRECATED = "deprecated:"


class _Parser(argparse.ArgumentParser):
    """argparse whose errors raise SettingsError (one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of exiting: the entry point prints one line and exits 2."""
        raise SettingsError(message)


def _negative(spec: SettingSpec) -> bool:
    # `--no-pull` says what it does; "(default true)" beside it would read backwards.
    return spec.kind == "bool" and bool(spec.flag) and str(spec.flag).startswith("--no-")


def help_text(spec: SettingSpec) -> str:
    """The help of one setting as every face shows it: text, default, variables."""
    notes = []
    if spec.required:
        notes.append("required")
    elif spec.default not in (None, (), "", False) and not spec.secret and not _negative(spec):
        notes.append(f"default {render(spec.default)}")
    if spec.env:
        notes.append("env " + ", ".join(spec.env))
    return f"{spec.help} ({'; '.join(notes)})" if notes else spec.help


def _escaped(text: str) -> str:
    # argparse %-formats help strings; a literal "%" (e.g. "5 % of slots") must be doubled.
    return text.replace("%", "%%")


def parser_for(cls: type[ServiceSettings]) -> argparse.ArgumentParser:
    """An argparse parser for `cls`; every option defaults to "not given" (SUPPRESS)."""
    parser = _Parser(prog=cls.prog or None, description=cls.summary or cls.__doc__)
    for spec in specs(cls):
        if spec.positional:
            nargs = "*" if spec.kind == "list" else ("?" if not spec.required else None)
            parser.add_argument(
                spec.name, nargs=nargs, default=argparse.SUPPRESS, help=_escaped(help_text(spec))
            )
            continue
        if spec.flag is None:
            continue
        _add_option(parser, spec, spec.flag, spec.name, _escaped(help_text(spec)))
        for old in spec.deprecated:
            _add_option(parser, spec, old, f"{_DEPRECATED}{spec.name}:{old}", argparse.SUPPRESS)
    parser.add_argument(
        PRINT_CONFIG,
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the effective settings, each with where it came from, and exit",
    )
    return parser


def _add_option(
    parser: argparse.ArgumentParser, spec: SettingSpec, flag: str, dest: str, help: str
) -> None:
    common: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help}
    if spec.kind == "bool":
        if flag.startswith("--no-"):
            # A seed spelling such as `--no-pull`: the flag alone means False.
            parser.add_argument(flag, action="store_false", **common)
        else:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
    elif spec.kind == "list":
        parser.add_argument(flag, action="append", metavar=spec.metavar, **common)
    else:
        parser.add_argument(flag, choices=spec.choices, metavar=spec.metavar, **common)


def parse_flags(
    cls: type[ServiceSettings], argv: Iterable[str]
) -> tuple[dict[str, object], list[str], bool]:
    """(values given on the command line, deprecation warnings, whether --print-config)."""
    namespace = vars(parser_for(cls).parse_args(list(argv)))
    show = bool(namespace.pop(PRINT_CONFIG.lstrip("-").replace("-", "_"), False))
    given: dict[str, object] = {}
    warnings: list[str] = []
    for dest, value in namespace.items():
        if dest.startswith(_DEPRECATED):
            name, old = dest[len(_DEPRECATED) :].split(":", 1)
            spec = next(s for s in specs(cls) if s.name == name)
            warnings.append(f"{old} is deprecated and will be removed: use {spec.flag}")
            dest = name
        if isinstance(value, list) and isinstance(given.get(dest), list):
            value = [*given[dest], *value]  # type: ignore[misc]
        given[dest] = value
    return given, warnings, show


def render(value: object) -> str:
    """A value as text a flag or variable accepts back (lists: comma-separated)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, tuple | list | frozenset):
        return ",".join(render(v) for v in value)
    return str(value)


def option_argv(spec: SettingSpec, value: Any) -> list[str]:
    """The arguments that set one setting to `value`; [] for "not given" (None, empty, or a
    bool at its default)."""
    if value is None or value == [] or (spec.kind == "bool" and value == spec.default):
        return []
    if spec.positional:
        return [render(v) for v in value] if spec.kind == "list" else [render(value)]
    flag = spec.flag or "--" + spec.name.replace("_", "-")
    if spec.kind == "bool" and flag.startswith("--no-"):
        return [] if value else [flag]
    if spec.kind == "bool":
        return [flag] if value else ["--no-" + flag.removeprefix("--")]
    if spec.kind == "list":
        return [arg for item in value for arg in _pair(flag, render(item))]
    return _pair(flag, render(value))


def _pair(flag: str, text: str) -> list[str]:
    # argparse takes "-1m" after a flag for another flag; "--keepalive=-1m" is unambiguous.
    return [f"{flag}={text}"] if text.startswith("-") else [flag, text]


def to_argv(settings: ServiceSettings) -> list[str]:
    """The arguments that reproduce `settings` (values that differ from their defaults).

    Secrets and environment-only settings are left out: pass `child_env(settings)` to the
    child's environment for those, so that no key shows in the process table.
    """
    argv: list[str] = []
    positional: list[str] = []
    for spec in specs(type(settings)):
        value = getattr(settings, spec.name)
        if spec.secret or (spec.flag is None and not spec.positional):
            continue
        if not spec.required and value == spec.default:
            continue
        if spec.positional:
            positional += option_argv(spec, value)
        else:
            argv += option_argv(spec, list(value) if spec.kind == "list" else value)
    return argv + (["--", *positional] if positional else [])
