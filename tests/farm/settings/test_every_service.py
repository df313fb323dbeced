"""Every service's settings hold to their one declaration, whichever face shows them.

The test finds every `ServiceSettings` class in the packages and every invoke task made from
one, then checks, field by field: the service's `--help` and the task's `--help` carry the
same help text; a changed value survives `to_argv`/`child_env`; each variable is honoured;
and no module of the package declares the same default again.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from farm.settings import ServiceSettings, SettingSpec, child_env, load, specs, to_argv
from farm.settings.argv import help_text, option_argv, render
from farm.settings.load import validate

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("farm", "relay", "bench")
# locust monkey-patches the process with gevent on import; these two are its only importers.
GEVENT_MODULES = ("bench.users", "bench.locustfile")


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


@cache
def settings_classes() -> tuple[type[ServiceSettings], ...]:
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            if info.name not in GEVENT_MODULES and not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    classes = [
        c
        for c in _all_subclasses(ServiceSettings)
        # A class without `prog` is a base shared by several verbs, not a service of its own.
        if c.__module__.split(".")[0] in PACKAGES and c.prog
    ]
    return tuple(sorted(set(classes), key=lambda c: f"{c.__module__}.{c.__qualname__}"))


@cache
def tasks_by_class() -> dict[type[ServiceSettings], Any]:
    sys.path.insert(0, str(ROOT))
    try:
        tasks = importlib.import_module("tasks")
    finally:
        sys.path.remove(str(ROOT))
    found = {}
    for value in vars(tasks).values():
        cls = getattr(value, "settings_class", None)
        if cls is not None:
            found[cls] = value
    return found


def invocation(task: Any) -> str:
    """What a user types for `task`: its name, dotted when it sits in a sub-collection."""
    tasks = sys.modules["tasks"]
    ns = getattr(tasks, "ns", None)
    if ns is None:
        return str(task.name)
    return next(full for full in ns.task_names if ns[full] is task)


def _ids(cls: type[ServiceSettings]) -> str:
    return cls.__name__


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _service_argv(cls: type[ServiceSettings]) -> list[str]:
    words = cls.prog.split()
    assert words[:2] == ["python", "-m"], f"{cls.__name__}.prog must be 'python -m module [verb]'"
    return [sys.executable, *words[1:]]


def test_every_service_has_settings() -> None:
    progs = {c.prog.split()[2] for c in settings_classes()}
    for module in ("farm.sim", "farm.proxy", "farm", "farm.gpu", "relay", "relay.localnode"):
        assert module in progs
    assert {"farm.webdemo", "bench"} <= progs


@pytest.mark.parametrize("cls", settings_classes(), ids=_ids)
def test_each_field_is_declared_with_help_and_a_flag_named_after_it(
    cls: type[ServiceSettings],
) -> None:
    for spec in specs(cls):
        assert spec.help, f"{cls.__name__}.{spec.name} has no help"
        if spec.flag is not None and not spec.flag.startswith("--no-"):
            # One name per concept: the flag, the field and the task option are the same word.
            assert spec.flag == "--" + spec.name.replace("_", "-"), (cls.__name__, spec.flag)


@pytest.mark.parametrize("cls", settings_classes(), ids=_ids)
def test_service_help_shows_every_flag_with_its_declared_help(cls: type[ServiceSettings]) -> None:
    out = subprocess.run(
        [*_service_argv(cls), "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    for spec in specs(cls):
        if spec.flag is None and not spec.positional:
            continue
        if spec.flag is not None:
            assert spec.flag in out.stdout, (cls.__name__, spec.flag)
        assert _squeezed(help_text(spec)) in _squeezed(out.stdout), (cls.__name__, spec.name)


def _task_classes() -> list[type[ServiceSettings]]:
    return sorted(tasks_by_class(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _task_classes(), ids=_ids)
def test_task_help_shows_the_same_help_as_the_service(cls: type[ServiceSettings]) -> None:
    name = invocation(tasks_by_class()[cls])
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "--help", name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    for spec in specs(cls):
        if spec.flag is None and not spec.positional:
            continue
        option = spec.name.replace("_", "-")
        assert option in out.stdout, (name, option)
        assert _squeezed(help_text(spec)) in _squeezed(out.stdout), (name, spec.name)


# Values for the settings that have no default, by field name.
REQUIRED_EXAMPLES: dict[str, Any] = {
    "model": "gemma3:4b",
    "prompt": "hello",
    "to": "ollama-farm-relay." + "ab" * 32,
    "backend": ("http://127.0.0.1:11434",),
    "name": "alice",
}


def _required_values(cls: type[ServiceSettings]) -> dict[str, Any]:
    # A field may also be required by a validator while its declared default is empty.
    return {
        s.name: REQUIRED_EXAMPLES[s.name]
        for s in specs(cls)
        if s.required or (s.name in REQUIRED_EXAMPLES and not s.default)
    }


def _candidates(spec: SettingSpec, annotation: Any) -> list[Any]:
    """Values other than the default that a field of this type may hold."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if (
        get_origin(annotation) is not None
        and len(args) == 1
        and get_origin(annotation) is not tuple
    ):
        annotation = args[0]
    default = spec.default
    if get_origin(annotation) is Literal:
        return [v for v in get_args(annotation) if v != default]
    if annotation is bool:
        return [not default]
    if annotation is int:
        base = default if isinstance(default, int) else 1
        return [base + 1, base * 2 + 3, 2, 7]
    if annotation is float:
        base = default if isinstance(default, float | int) else 1.0
        return [base + 0.5, base * 2 + 1.25, 0.25, 3.0]
    if annotation is str:
        return ["127.0.0.2", "x1", "gemma3:1b", "http://127.0.0.1:9", "10s"]
    if annotation is Path:
        return [Path("some dir/file")]
    if get_origin(annotation) is tuple:
        return [("http://127.0.0.1:9", "http://127.0.0.1:10"), ("a", "b"), (1, 2)]
    return []


def _changed(cls: type[ServiceSettings], spec: SettingSpec) -> ServiceSettings | None:
    base = _required_values(cls)
    annotation = cls.model_fields[spec.name].annotation
    for value in _candidates(spec, annotation):
        try:
            return validate(cls, {**base, spec.name: value})
        except ValueError:
            continue
    return None


@pytest.mark.parametrize("cls", settings_classes(), ids=_ids)
def test_a_changed_field_survives_to_argv_and_child_env(cls: type[ServiceSettings]) -> None:
    exercised = 0
    for spec in specs(cls):
        changed = _changed(cls, spec)
        if changed is None:
            continue
        exercised += 1
        again = load(cls, to_argv(changed), child_env(changed)).settings
        assert again == changed, (cls.__name__, spec.name, to_argv(changed))
    assert exercised >= len(specs(cls)) // 2, f"{cls.__name__}: too few fields exercised"


@pytest.mark.parametrize("cls", settings_classes(), ids=_ids)
def test_each_variable_is_honoured(cls: type[ServiceSettings]) -> None:
    for spec in specs(cls):
        changed = _changed(cls, spec)
        if changed is None or not spec.env:
            continue
        value = getattr(changed, spec.name)
        # Required values go on the command line, except the one whose variable is tested.
        others = {s.name: s for s in specs(cls)}
        argv = [
            arg
            for name, required in _required_values(cls).items()
            if name != spec.name
            for arg in option_argv(others[name], required)
        ]
        for key in spec.env:
            loaded = load(cls, argv, {key: render(value)})
            assert loaded.origins[spec.name] == f"env {key}", (cls.__name__, key)
            if spec.from_env is None:
                assert getattr(loaded.settings, spec.name) == value, (cls.__name__, key)


def _trivial(value: object) -> bool:
    return value is None or isinstance(value, bool) or value in ((), "", 0, 1, [])


def _module_files(cls: type[ServiceSettings]) -> list[Path]:
    """The service's own package (its room), where a second default would be read."""
    package = Path(sys.modules[cls.__module__].__file__ or "").resolve().parent
    files = [p for p in package.rglob("*.py") if "node_modules" not in p.parts]
    return [*files, ROOT / "tasks.py"]


def _declared_defaults(path: Path) -> list[tuple[str, object, int]]:
    """(name, literal, line) of parameter defaults, annotated class fields and argparse
    `default=` in `path`."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, object, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(
                zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
            )
            pairs += [
                (a, d)
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if d is not None
            ]
            for arg, default in pairs:
                if isinstance(default, ast.Constant):
                    found.append((arg.arg, default.value, default.lineno))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(node.value, ast.Constant):
                found.append((node.target.id, node.value.value, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            flag = node.args[0].value
            for kw in node.keywords:
                if (
                    kw.arg == "default"
                    and isinstance(kw.value, ast.Constant)
                    and isinstance(flag, str)
                ):
                    found.append((flag.lstrip("-").replace("-", "_"), kw.value.value, kw.lineno))
    return found


@pytest.mark.parametrize("cls", settings_classes(), ids=_ids)
def test_defaults_are_declared_only_in_the_settings_class(cls: type[ServiceSettings]) -> None:
    home = Path(sys.modules[cls.__module__].__file__ or "").resolve()
    names = {s.name: s.default for s in specs(cls) if not _trivial(s.default)}
    clashes = []
    for path in _module_files(cls):
        if path.resolve() == home:
            continue
        for name, literal, line in _declared_defaults(path):
            if name in names and literal == names[name] and type(literal) is type(names[name]):
                clashes.append(f"{path.relative_to(ROOT)}:{line}: {name} = {literal!r}")
    assert clashes == [], f"defaults of {cls.__name__} declared again"


def test_tasks_build_no_command_lines_from_strings() -> None:
    text = (ROOT / "tasks.py").read_text()
    assert not re.search(r'" "\.join|shlex\.quote|\.split\(\)', text)


def test_only_the_settings_layer_reads_the_environment() -> None:
    readers = []
    for package in (*PACKAGES, "tasks.py"):
        paths = [ROOT / package] if package.endswith(".py") else (ROOT / package).rglob("*.py")
        for path in paths:
            if "node_modules" in path.parts or path.is_relative_to(ROOT / "farm" / "settings"):
                continue
            if "os.environ" in path.read_text():
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []
