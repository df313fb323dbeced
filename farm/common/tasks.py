"""The invoke face of a settings class: a task whose options are the service's settings.

`service_task(SimSettings, "farm.sim")` is a complete task: its options, their help and
which ones repeat come from the declarations, and its body renders the given options back
into a `python -m` argv list and runs it in the foreground (`run_foreground`). A task holds no
default of its own: an option left out is left to the service, which reads its environment.
"""

from __future__ import annotations

import inspect
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from farm.common.foreground import run_foreground
from farm.settings.argv import PRINT_CONFIG, help_text, option_argv
from farm.settings.declare import ServiceSettings, SettingSpec, specs
from farm.settings.load import process_environ


def task_specs(cls: type[ServiceSettings]) -> tuple[SettingSpec, ...]:
    """The settings that appear as task options: those with a flag or a position."""
    return tuple(s for s in specs(cls) if s.flag is not None or s.positional)


def _parameters(cls: type[ServiceSettings]) -> list[inspect.Parameter]:
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for spec in task_specs(cls):
        if spec.positional:
            params.append(
                inspect.Parameter(spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
            )
            continue
        # A bool keeps its declared default so that invoke makes it a flag (`--no-x` when the
        # default is true); every other option is None, "not given".
        default = bool(spec.default) if spec.kind == "bool" else None
        params.append(inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=default))
    params.append(inspect.Parameter("print_config", inspect.Parameter.KEYWORD_ONLY, default=False))
    return params


def service_task(
    cls: type[ServiceSettings],
    module: str,
    *,
    doc: str,
    verb: Sequence[str] = (),
    name: str | None = None,
    python: Callable[[], str] = lambda: sys.executable,
) -> Task[Any]:
    """An invoke task running `python -m module [verb...] <options>`; `doc`'s first line is
    its help."""
    spec_list = task_specs(cls)

    def body(c: Context, **options: Any) -> None:
        argv = [python(), "-m", module, *verb]
        positional: list[str] = []
        env = process_environ()
        for spec in spec_list:
            value = options.get(spec.name)
            if spec.positional and isinstance(value, str):
                # invoke gives a positional one word; a quoted "a b" names several (README).
                value = shlex.split(value) if spec.kind == "list" else value
            rendered = option_argv(spec, value)
            if spec.secret and rendered and spec.env:
                # A key given to the task reaches the child by its variable, not the process table.
                env[spec.env[0]] = rendered[-1]
            elif spec.positional:
                positional += rendered
            else:
                argv += rendered
        if options.get("print_config"):
            argv.append(PRINT_CONFIG)
        code = run_foreground([*argv, *(["--", *positional] if positional else [])], env)
        if code != 0:
            raise Exit(code=code)

    params = _parameters(cls)
    # Positional parameters first, as Python signatures require.
    params.sort(key=lambda p: p.kind)
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__doc__ = doc
    body.__name__ = name or module.replace(".", "_")
    body.__module__ = "tasks"
    helps = {spec.name: help_text(spec) for spec in spec_list}
    helps["print_config"] = "print the effective settings, each with where it came from, and exit"
    made: Task[Any] = task(
        name=name,
        help=helps,
        iterable=[s.name for s in spec_list if s.kind == "list" and not s.positional],
        positional=[s.name for s in spec_list if s.positional],
        auto_shortflags=False,
    )(body)
    # What the task runs, for the tests that hold every face to its declaration.
    made.settings_class = cls  # type: ignore[attr-defined]
    made.service_argv = [module, *verb]  # type: ignore[attr-defined]
    return made
