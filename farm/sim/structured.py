"""Structured output for the synthetic engine: a JSON text that honours a request's `format`.

Ollama turns `format` into a grammar inside the runner: `"json"` allows any JSON value (the
models answer with an object), a JSON-Schema object allows only instances of that schema.
The synthetic engine has no sampler to constrain, so it builds the instance directly: the
same schema and seed always give the same text, built from a small vocabulary.

The schema subset is what the official clients' structured-output examples and pydantic's
`model_json_schema()` emit: `type` (one or a list), `properties`, `required`,
`additionalProperties`, `items`, `prefixItems`, `minItems`/`maxItems`, `uniqueItems`, `enum`,
`const`, `minimum`/`maximum` (and the exclusive forms), `multipleOf` on integers,
`minLength`/`maxLength`, `format` for a few common string formats, `anyOf`/`oneOf` (the first
branch that can be satisfied), `allOf` of one schema, and local `$ref`s into `$defs` or
`definitions`. Unknown keywords are ignored, as a grammar converter does.

Errors (Ollama's texts; it answers them with 500, after scheduling, since the runner checks):

FormatError(ValueError)
├── InvalidFormat        `format` is neither "json" nor a JSON-Schema object
└── UnsatisfiableSchema  no instance satisfies the schema (or it uses an unresolvable `$ref`)
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

FORMAT_HINT = 'expected "json" or a valid JSON Schema object'
BAD_SCHEMA_TEXT = "invalid JSON schema in format"
# A recursive schema (a tree model) stops growing optional parts below this depth.
_OPTIONAL_DEPTH = 4
_MAX_DEPTH = 32
_VOCABULARY = (
    "amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
    "kettle", "lumen", "maple", "north", "orbit", "pebble", "quartz", "river", "saffron", "tide",
    "umber", "velvet", "willow", "yarrow", "zephyr", "lantern", "meadow", "summit", "canyon",
    "breeze",
)  # fmt: skip
_NUMBER_SPAN = 100


class FormatError(ValueError):
    """A `format` the runner refuses; `message` is Ollama's text (answered with 500)."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidFormat(FormatError):
    """`format` is neither `"json"` nor a JSON-Schema object."""


class UnsatisfiableSchema(FormatError):
    """The schema admits no instance the generator can build."""

    def __init__(self, detail: str) -> None:
        super().__init__(BAD_SCHEMA_TEXT)
        self.detail = detail

    def __str__(self) -> str:
        return f"{BAD_SCHEMA_TEXT} ({self.detail})"


def validate_format(fmt: object) -> str | dict[str, object] | None:
    """Check a request's `format` as Ollama's runner does: `"json"`, a schema object, or unset.

    `null` and `""` count as unset (None). Anything else raises `InvalidFormat` with Ollama's
    text, which quotes the raw JSON of the value (`invalid format: "\\"yaml\\""; ...`).
    """
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return "json"
    if isinstance(fmt, dict):
        return fmt
    raw = json.dumps(fmt, separators=(",", ":"), ensure_ascii=False)
    raise InvalidFormat(f"invalid format: {_go_quote(raw)}; {FORMAT_HINT}")


def format_from_response_format(response_format: object) -> str | dict[str, object] | None:
    """The native `format` for an OpenAI `response_format`, as Ollama's `/v1` adapter maps it.

    `{"type": "json_object"}` becomes `"json"`; `{"type": "json_schema", "json_schema":
    {"schema": {...}}}` becomes the schema; any other type (e.g. `text`) or shape means no
    format. The schema itself is checked later, by `validate_format`.
    """
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    kind = kind.strip().lower() if isinstance(kind, str) else ""
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return validate_format(schema)
    return None


def synthetic_json(fmt: str | dict[str, object], seed: int) -> str:
    """A complete JSON text for `format`: an object for `"json"`, else an instance of the schema.

    Deterministic for a given `fmt` and `seed`. Raises `InvalidFormat` for a bad `fmt` and
    `UnsatisfiableSchema` when the schema admits nothing this generator can build.
    """
    checked = validate_format(fmt)
    rng = random.Random(seed)
    if not isinstance(checked, dict):
        return json.dumps(_free_object(rng))
    return json.dumps(_Builder(checked, rng).build(checked, 0))


# ----- building instances --------------------------------------------------------------------


def _word(rng: random.Random) -> str:
    return rng.choice(_VOCABULARY)


def _free_object(rng: random.Random) -> dict[str, Any]:
    """What `format: "json"` gives: a small object of mixed values."""
    keys = rng.sample(_VOCABULARY, rng.randint(2, 4))
    makers = (
        lambda: " ".join(_word(rng) for _ in range(rng.randint(1, 3))),
        lambda: rng.randint(0, _NUMBER_SPAN),
        lambda: rng.random() < 0.5,
        lambda: [_word(rng) for _ in range(rng.randint(1, 3))],
    )
    return {key: makers[i % len(makers)]() for i, key in enumerate(keys)}


class _Builder:
    """Builds one instance of a schema, resolving local `$ref`s against its root."""

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def build(self, schema: object, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise UnsatisfiableSchema("the schema requires unbounded nesting")
        if schema is True or schema == {}:
            return _word(self._rng)
        if not isinstance(schema, dict):
            raise UnsatisfiableSchema(f"a subschema is {json.dumps(schema)}")
        if "$ref" in schema:
            return self.build(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(schema)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return self._first_branch(schema, key, depth)
        if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            return self.build({**merged, **schema["allOf"][0]}, depth)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind in ("integer", "number"):
            return _integer(schema, self._rng) if kind == "integer" else _number(schema, self._rng)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        raise UnsatisfiableSchema(f"unknown type {kind!r}")

    def _resolve(self, ref: object) -> object:
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise UnsatisfiableSchema(f"only local $refs are supported, not {ref!r}")
        node: object = self._root
        for part in ref[2:].split("/") if ref != "#" else ():
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise UnsatisfiableSchema(f"$ref {ref!r} points nowhere")
            node = node[part]
        return node

    def _enum(self, schema: dict[str, Any]) -> Any:
        values = schema["enum"]
        if not isinstance(values, list):
            raise UnsatisfiableSchema("enum is not a list")
        types = _types(schema)
        allowed = [v for v in values if not types or _json_type(v) in types]
        if not allowed:
            raise UnsatisfiableSchema("no enum value has the schema's type")
        return self._rng.choice(allowed)

    def _first_branch(self, schema: dict[str, Any], key: str, depth: int) -> Any:
        branches = schema[key]
        # Deep inside a recursive schema prefer a branch that ends the recursion (null first).
        if depth >= _OPTIONAL_DEPTH:
            branches = sorted(branches, key=lambda b: not (isinstance(b, dict) and "$ref" not in b))
        last: UnsatisfiableSchema | None = None
        for branch in branches:
            try:
                return self.build(branch, depth + 1)
            except UnsatisfiableSchema as exc:
                last = exc
        raise last or UnsatisfiableSchema(f"{key} has no branches")

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required:
                out[name] = self.build(sub, depth + 1)
            elif depth < _OPTIONAL_DEPTH:
                try:  # an optional property that admits nothing is simply left out
                    out[name] = self.build(sub, depth + 1)
                except UnsatisfiableSchema:
                    pass
        for name in required:
            if name in out:
                continue
            if extra is False:
                raise UnsatisfiableSchema(f"{name!r} is required but not allowed")
            out[name] = self.build(extra if isinstance(extra, dict) else True, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", True)
        if isinstance(items, list):  # draft 4-7 tuple form: `items` list, `additionalItems`
            prefix, items = items, schema.get("additionalItems", True)
        low = _count(schema.get("minItems")) or 0
        given = _count(schema.get("maxItems"))
        high = max(low, 3) if given is None else given
        if items is False:
            high = min(high, len(prefix))
        if low > high:
            raise UnsatisfiableSchema(f"minItems {low} exceeds maxItems {high}")
        count = low if depth >= _OPTIONAL_DEPTH else self._rng.randint(low, max(low, min(high, 3)))
        count = max(count, min(len(prefix), high) if depth < _OPTIONAL_DEPTH else low)
        out: list[Any] = []
        tries = 0
        while len(out) < count:
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            value = self.build(sub, depth + 1)
            if schema.get("uniqueItems") and any(_same(value, seen) for seen in out):
                tries += 1
                if tries > 50:
                    raise UnsatisfiableSchema("too few distinct values for uniqueItems")
                continue
            out.append(value)
        return out

    def _string(self, schema: dict[str, Any]) -> str:
        low = _count(schema.get("minLength")) or 0
        high = _count(schema.get("maxLength"))
        if high is not None and low > high:
            raise UnsatisfiableSchema(f"minLength {low} exceeds maxLength {high}")
        text = _formatted(schema.get("format"), self._rng)
        if text is None or len(text) < low or (high is not None and len(text) > high):
            text = " ".join(_word(self._rng) for _ in range(self._rng.randint(1, 3)))
            while len(text) < low:
                text += " " + _word(self._rng)
            text = text[:high] if high is not None else text
        return text


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return []


def _kind(schema: dict[str, Any]) -> str:
    """The one type to build: the first non-null declared type, else inferred from keywords."""
    types = _types(schema)
    if types:
        return next((t for t in types if t != "null"), types[0])
    if {"properties", "required", "additionalProperties"} & schema.keys():
        return "object"
    if {"items", "prefixItems", "minItems", "maxItems"} & schema.keys():
        return "array"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys():
        return "number"
    return "string"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low_exclusive, high, high_exclusive), draft 4 boolean exclusives included."""
    low, high = _num(schema.get("minimum")), _num(schema.get("maximum"))
    low_ex = high_ex = False
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    bound = _num(ex_low)
    if ex_low is True:
        low_ex = True
    elif bound is not None and (low is None or bound >= low):
        low, low_ex = bound, True
    bound = _num(ex_high)
    if ex_high is True:
        high_ex = True
    elif bound is not None and (high is None or bound <= high):
        high, high_ex = bound, True
    return low, low_ex, high, high_ex


def _count(value: object) -> int | None:
    """A schema's non-negative count keyword (`minItems`, `maxLength`); None when absent."""
    number = _num(value)
    return None if number is None else max(math.floor(number), 0)


def _num(value: object) -> float | None:
    """A schema's numeric keyword as a float; None when absent or not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _integer(schema: dict[str, Any], rng: random.Random) -> int:
    low, low_ex, high, high_ex = _bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_ex else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_ex else math.floor(high))
    if lo is None:
        lo = 0 if hi is None or hi >= 0 else hi - _NUMBER_SPAN
    if hi is None:
        hi = lo + _NUMBER_SPAN
    if lo > hi:
        raise UnsatisfiableSchema(f"no integer in [{lo}, {hi}]")
    step = _num(schema.get("multipleOf"))
    if step is not None and step > 0:
        return int(_multiple(rng, lo, hi, step, lambda v: float(v).is_integer()))
    return rng.randint(lo, hi)


def _number(schema: dict[str, Any], rng: random.Random) -> float | int:
    low, low_ex, high, high_ex = _bounds(schema)
    lo = low if low is not None else min(0.0, (high or 0.0) - _NUMBER_SPAN)
    hi = high if high is not None else lo + _NUMBER_SPAN

    def inside(value: float) -> bool:
        above = low is None or (value > low if low_ex else value >= low)
        return above and (high is None or (value < high if high_ex else value <= high))

    step = _num(schema.get("multipleOf"))
    if step is not None and step > 0:
        return _multiple(rng, lo, hi, step, inside)
    for value in (round(rng.uniform(lo, hi), 2), (lo + hi) / 2, lo, hi):
        if inside(value):
            return _tidy(value)
    raise UnsatisfiableSchema(f"no number in the range {low}..{high}")


def _multiple(
    rng: random.Random, lo: float, hi: float, step: float, ok: Callable[[float], bool]
) -> float | int:
    """A multiple of `step` in [lo, hi] that `ok` accepts and that divides exactly."""
    first, last = math.ceil(lo / step), math.floor(hi / step)
    factors = list(range(first, min(last, first + 64) + 1))
    rng.shuffle(factors)
    for factor in factors:
        value = _tidy(float(factor * step))
        if ok(value) and float(value / step).is_integer():
            return value
    raise UnsatisfiableSchema(f"no multiple of {step} in [{lo}, {hi}]")


def _tidy(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def _formatted(kind: object, rng: random.Random) -> str | None:
    """A plausible value for common string formats (jsonschema checks them only on request)."""
    if kind in ("date", "time", "date-time"):
        day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        return {"date": day, "time": clock}.get(kind, f"{day}T{clock}")
    if kind == "email":
        return f"{_word(rng)}@example.com"
    if kind in ("uri", "url"):
        return f"https://example.com/{_word(rng)}"
    if kind == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind == "ipv4":
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return None


def _go_quote(text: str) -> str:
    """Go's `%q` of a string: double quotes, with `"` and `\\` escaped (as Ollama prints)."""
    return json.dumps(text, ensure_ascii=False)
