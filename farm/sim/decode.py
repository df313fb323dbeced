"""Decoding request bodies the way Go's encoding/json does, with its error messages.

Ollama binds bodies into Go structs, so a wrong type is a 400 such as
`json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool`;
null leaves a field at its zero value. These helpers give the simulator the same answers.
"""

from __future__ import annotations

import json
from typing import Any

from farm.sim.errors import BadRequest

_GO_TYPES = {bool: "bool", str: "string", int: "int", float: "float64"}


def json_kind(value: object) -> str:
    """The JSON type name Go's decoder uses in its messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_body(body: bytes, struct: str) -> dict[str, Any]:
    """Parse a JSON object body; 400 `missing request body` when empty, Go's text otherwise."""
    if not body.strip():
        raise BadRequest("missing request body")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(_syntax_message(body, exc)) from exc
    except UnicodeDecodeError as exc:
        raise BadRequest("invalid character in request body") from exc
    if not isinstance(value, dict):
        raise BadRequest(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type api.{struct}"
        )
    return value


def _syntax_message(body: bytes, exc: json.JSONDecodeError) -> str:
    text = body.decode("utf-8", "replace")
    if exc.pos >= len(text.rstrip()):
        return "unexpected EOF"
    char = text[exc.pos]
    where = "looking for beginning of value"
    if exc.msg.startswith("Expecting property name"):
        where = "looking for beginning of object key string"
    elif exc.msg.startswith("Expecting ',' delimiter") or exc.msg.startswith("Extra data"):
        where = (
            "after top-level value"
            if exc.msg.startswith("Extra")
            else "after object key:value pair"
        )
    return f"invalid character {char!r} {where}"


class Fields:
    """Typed access to the fields of one decoded Go struct (`struct` names it in errors)."""

    def __init__(self, data: dict[str, Any], struct: str) -> None:
        # Go matches JSON keys to struct fields case-insensitively ("Model" fills `model`).
        self.data = {key.lower(): value for key, value in data.items()}
        self.struct = struct

    def _bad(self, name: str, value: object, go_type: str) -> BadRequest:
        kind = json_kind(value)
        if kind == "number" and go_type.startswith("int"):
            # Go names the value only when a number does not fit an integer field.
            kind = f"number {value}"
        return BadRequest(
            f"json: cannot unmarshal {kind} into Go struct field {self.struct}.{name} "
            f"of type {go_type}"
        )

    def string(self, name: str) -> str:
        """A string field ("" when absent or null)."""
        value = self.data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._bad(name, value, "string")
        return value

    def boolean(self, name: str) -> bool | None:
        """A *bool field (None when absent or null)."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._bad(name, value, "bool")
        return value

    def integer(self, name: str) -> int | None:
        """An int field (None when absent or null)."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(name, value, "int")
        return value

    def number(self, name: str) -> float | None:
        """A *float64 field (None when absent or null)."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(name, value, "float64")
        return float(value)

    def obj(self, name: str, go_type: str = "map[string]interface {}") -> dict[str, Any] | None:
        """An object field (None when absent or null)."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._bad(name, value, go_type)
        return value

    def array(self, name: str, go_type: str) -> list[Any] | None:
        """An array field (None when absent or null)."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._bad(name, value, go_type)
        return value

    def strings(self, name: str) -> list[str] | None:
        """A []string field."""
        values = self.array(name, "[]string")
        if values is None:
            return None
        for value in values:
            if not isinstance(value, str):
                raise self._bad(name, value, "string")
        return values
