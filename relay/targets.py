"""`Targets`: the services a relay forwards to (`RELAY_TARGETS`), name -> base URL.

Only these are reachable by name; the text form is the JSON object of the seed's `.env`
(`{"ollama":"http://127.0.0.1:8080"}`, the farm proxy), which flags, variables and
`--print-config` share.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated

import httpx
from pydantic import PlainSerializer, PlainValidator

DEFAULT_TARGETS = {"ollama": "http://127.0.0.1:8080"}


def http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host; ValueError otherwise."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid URL {value[:80]!r}") from exc
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"expected an http(s) URL with a host, got {value[:80]!r}")
    return value


class Targets(Mapping[str, str]):
    """`RELAY_TARGETS`: service name -> base URL, immutable; its text is the JSON object."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str]) -> None:
        """Wrap a validated mapping (use `Targets.parse` for text or unchecked input)."""
        self._items = dict(items)

    @classmethod
    def parse(cls, value: object) -> Targets:
        """From the JSON text of `RELAY_TARGETS` or a mapping; ValueError naming the problem."""
        if isinstance(value, Targets):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('not valid JSON (expected {"name": "http://host:port"})') from None
        if not isinstance(value, Mapping) or not value:
            raise ValueError("expected a non-empty JSON object of service -> base URL")
        for name, base in value.items():
            if not isinstance(name, str) or not isinstance(base, str):
                raise ValueError(f"service {name!r}: base URL must be a string")
            http_url(base)
        return cls(value)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __str__(self) -> str:
        # The form a flag, a variable and `--print-config` share (and `parse` reads back).
        return json.dumps(self._items, separators=(",", ":"))

    def __repr__(self) -> str:
        return f"Targets({self._items!r})"


#: How a settings field holds targets: any mapping in, a validated `Targets` out.
TargetMap = Annotated[Mapping[str, str], PlainValidator(Targets.parse), PlainSerializer(dict)]
