"""The settings layer: each service declares its settings once, as one typed class.

A field's type, default, validation, flag, environment keys and help live in one declaration
(`setting(...)` on a `ServiceSettings` subclass). Everything else is generated from it: the
`python -m` parser (`parser_for`), loading with precedence flag > environment > `.env` >
default (`load`), `--print-config` (`describe`), the argv a parent hands a child (`to_argv`,
with `child_env` for secrets) and the invoke tasks (`farm.common.tasks`).

This is the only layer of the project that reads `os.environ` (`process_environ`).
"""

from __future__ import annotations

from farm.settings.argv import parser_for, to_argv
from farm.settings.declare import ServiceSettings, SettingSpec, setting, spec_of, specs
from farm.settings.errors import SettingsError
from farm.settings.load import (
    Loaded,
    child_env,
    describe,
    load,
    process_environ,
    run_main,
)

__all__ = [
    "Loaded",
    "ServiceSettings",
    "SettingSpec",
    "SettingsError",
    "child_env",
    "describe",
    "load",
    "parser_for",
    "process_environ",
    "run_main",
    "setting",
    "spec_of",
    "specs",
    "to_argv",
]
