"""How a service declares a setting: `setting(...)` fields on a `ServiceSettings` class.

A field holds everything about one setting: its type (the annotation), default, validation
(pydantic constraints and validators), flag, environment keys and help. Nothing about a
setting is written anywhere else; parsers, tasks and reports read it back with `specs()`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

_META = "farm_setting"


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """What the generated faces need to know about one field (see `setting`)."""

    name: str
    flag: str | None
    env: tuple[str, ...]
    help: str
    secret: bool
    deprecated: tuple[str, ...]
    from_env: Callable[[str], object] | None
    metavar: str | None
    positional: bool
    kind: Literal["bool", "list", "scalar"]
    choices: tuple[str, ...] | None
    default: Any
    required: bool

    @property
    def label(self) -> str:
        """How errors name the setting when no flag or variable was involved."""
        return self.flag or self.name


def setting(
    default: Any = ...,
    *,
    help: str,
    flag: str | None = None,
    env: str | tuple[str, ...] = (),
    secret: bool = False,
    deprecated: tuple[str, ...] = (),
    from_env: Callable[[str], object] | None = None,
    metavar: str | None = None,
    positional: bool = False,
    cli: bool = True,
    **constraints: Any,
) -> Any:
    """Declare one setting.

    `flag` defaults to `--field-name`; `cli=False` keeps a setting off the command line (it is
    read from the environment only). `env` names the variables (and `.env` keys) that set it,
    first match wins. `from_env` converts a variable's text when pydantic's own coercion is not
    the variable's documented format (e.g. `OLLAMA_HOST=host:port`). `deprecated` lists old
    flag spellings that keep working with a one-line warning. `secret` values are redacted in
    `--print-config` and handed to children through the environment, never argv.
    `constraints` are pydantic's (`ge`, `le`, `min_length`, ...).
    """
    meta = {
        "flag": flag if cli else None,
        "auto_flag": cli and flag is None,
        "env": (env,) if isinstance(env, str) else tuple(env),
        "secret": secret,
        "deprecated": deprecated,
        "from_env": from_env,
        "metavar": metavar,
        "positional": positional,
    }
    # pydantic keeps `json_schema_extra` with the field through inheritance and copies; the
    # project never renders a JSON schema of settings, so a callable in it is harmless.
    return Field(
        default,
        description=help,
        json_schema_extra={_META: meta},  # type: ignore[dict-item]
        **constraints,
    )


def _kind(annotation: Any) -> tuple[Literal["bool", "list", "scalar"], tuple[str, ...] | None]:
    """Classify a field's type for the command line; `Literal[...]` values become choices."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin in (types.UnionType, typing.Union) and len(args) == 1:
        return _kind(args[0])
    if annotation is bool:
        return "bool", None
    if origin in (tuple, list, frozenset):
        return "list", None
    if origin is Literal:
        return "scalar", tuple(str(a) for a in get_args(annotation))
    return "scalar", None


def _spec(name: str, info: FieldInfo) -> SettingSpec:
    extra = info.json_schema_extra
    meta: dict[str, Any] = extra.get(_META, {}) if isinstance(extra, dict) else {}  # type: ignore[assignment]
    if not meta:
        raise TypeError(f"field {name!r} is not declared with setting(...)")
    kind, choices = _kind(info.annotation)
    flag = meta["flag"]
    if meta.get("auto_flag"):
        flag = "--" + name.replace("_", "-")
    return SettingSpec(
        name=name,
        flag=None if meta["positional"] else flag,
        env=meta["env"],
        help=info.description or "",
        secret=meta["secret"],
        deprecated=meta["deprecated"],
        from_env=meta["from_env"],
        metavar=meta["metavar"],
        positional=meta["positional"],
        kind=kind,
        choices=choices,
        default=None if info.is_required() else info.get_default(call_default_factory=True),
        required=info.is_required(),
    )


class ServiceSettings(BaseSettings):
    """Base class of every service's settings: frozen, strict about unknown fields.

    Constructing one with keyword arguments reads nothing else (no environment, no `.env`):
    `load()` is the one place that layers flags, environment and `.env` over the defaults,
    so that a test or a parent process gets exactly the values it passed.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    #: `prog` of the generated parser, e.g. "python -m farm.sim".
    prog: ClassVar[str] = ""
    #: The parser's description (the service's one-line summary).
    summary: ClassVar[str] = ""
    #: Name of the field holding the `.env` file to read, if the service reads one.
    env_file_setting: ClassVar[str | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: `load()` does the layering, with provenance."""
        return (init_settings,)


def specs(cls: type[ServiceSettings]) -> tuple[SettingSpec, ...]:
    """Every setting of `cls`, in declaration order."""
    return tuple(_spec(name, info) for name, info in cls.model_fields.items())


def spec_of(cls: type[ServiceSettings], name: str) -> SettingSpec:
    """The declaration of one field of `cls`."""
    return _spec(name, cls.model_fields[name])
