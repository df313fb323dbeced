"""The synthetic engine's structured output: `format` checked as Ollama's runner checks it,
and JSON texts that validate against the requested schema (checked with `jsonschema`)."""

from __future__ import annotations

import enum
import json
from typing import Any, Literal

import httpx
import jsonschema
import ollama
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from farm.sim.child import SimServer
from farm.sim.structured import (
    BAD_SCHEMA_TEXT,
    InvalidFormat,
    UnsatisfiableSchema,
    format_from_response_format,
    synthetic_json,
    validate_format,
)

# ----- schemas from the supported subset, always satisfiable ---------------------------------

_names = st.text("abcdefghij_", min_size=1, max_size=6)


@st.composite
def _string_schema(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(0, 12))
    schema: dict[str, Any] = {"type": "string"}
    if draw(st.booleans()):
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 20))
    if draw(st.booleans()):
        schema["format"] = draw(st.sampled_from(["date-time", "date", "email", "uuid", "uri"]))
    return schema


@st.composite
def _number_schema(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    low = draw(st.integers(-1000, 1000))
    schema: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        span = draw(st.integers(2, 500))
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = low + span
    if draw(st.booleans()):
        steps = st.integers(1, 7) if kind == "integer" else st.sampled_from([0.5, 0.25, 2, 0.1])
        schema["multipleOf"] = draw(steps)
    return schema


_scalars = st.one_of(
    _string_schema(),
    _number_schema(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(
        st.one_of(st.text(max_size=5), st.integers(), st.booleans()), min_size=1, max_size=4
    ).map(lambda values: {"enum": values}),
    st.one_of(st.text(max_size=5), st.integers(), st.none()).map(lambda value: {"const": value}),
    st.just({"type": ["string", "null"]}),
    st.just({}),
)


def _containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    @st.composite
    def obj(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(_names, children, max_size=4))
        required = [name for name in properties if draw(st.booleans())]
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    @st.composite
    def array(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.integers(0, 3))
        schema: dict[str, Any] = {"type": "array", "items": draw(children), "minItems": low}
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 3))
        return schema

    # oneOf branches of different types, so that exactly one branch matches.
    one_of = st.tuples(_string_schema(), _number_schema()).map(lambda b: {"oneOf": list(b)})
    any_of = st.lists(children, min_size=1, max_size=3).map(lambda b: {"anyOf": b})
    return st.one_of(obj(), array(), one_of, any_of)


_schemas = st.recursive(_scalars, _containers, max_leaves=12)


@st.composite
def _with_defs(draw: st.DrawFn) -> dict[str, Any]:
    """A root object whose properties point into `$defs`, as pydantic writes nested models."""
    defs = draw(st.dictionaries(_names, _schemas, min_size=1, max_size=3))
    properties = {f"p_{name}": {"$ref": f"#/$defs/{name}"} for name in defs}
    return {"$defs": defs, "type": "object", "properties": properties, "required": list(defs)}


@settings(max_examples=150, deadline=None)
@given(schema=st.one_of(_schemas, _with_defs()), seed=st.integers(0, 2**31))
def test_every_supported_schema_gets_an_instance_that_validates(
    schema: dict[str, Any], seed: int
) -> None:
    text = synthetic_json(schema, seed)
    jsonschema.validate(json.loads(text), schema, cls=jsonschema.Draft202012Validator)
    assert synthetic_json(schema, seed) == text  # deterministic for a seed


# ----- pydantic models, as the official client's structured-output example uses them -----------


class Pet(BaseModel):
    name: str
    animal: str
    age: int
    color: str | None
    favorite_toy: str | None


class PetList(BaseModel):
    pets: list[Pet]


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Node(BaseModel):
    label: str = Field(min_length=2, max_length=8)
    weight: float = Field(ge=0, le=1)
    children: list[Node] = []


class Everything(BaseModel):
    kind: Literal["a", "b"]
    colour: Colour
    tags: set[str]
    pair: tuple[int, str]
    counts: dict[str, int]
    tree: Node
    maybe: int | None = None
    score: int = Field(gt=0, lt=10, multiple_of=3)


@pytest.mark.parametrize("model", [Pet, PetList, Node, Everything], ids=lambda m: m.__name__)
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_pydantic_model_schemas_round_trip(model: type[BaseModel], seed: int) -> None:
    model.model_validate_json(synthetic_json(model.model_json_schema(), seed))


def test_different_seeds_give_different_instances() -> None:
    schema = PetList.model_json_schema()
    assert len({synthetic_json(schema, seed) for seed in range(10)}) > 1


def test_json_format_gives_an_object_of_words() -> None:
    texts = {synthetic_json("json", seed) for seed in range(20)}
    assert len(texts) > 1
    for text in texts:
        assert isinstance(json.loads(text), dict) and json.loads(text)
    assert synthetic_json("json", 3) == synthetic_json("json", 3)


# ----- the format field, as Ollama's runner checks it ------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("", None), ("json", "json"), ({"type": "object"}, {"type": "object"})],
    ids=["null", "empty", "json", "schema"],
)
def test_valid_formats_are_accepted(given: object, expected: object) -> None:
    assert validate_format(given) == expected


@pytest.mark.parametrize(
    ("given", "quoted"),
    [("yaml", r'"\"yaml\""'), ("JSON", r'"\"JSON\""'), (5, '"5"'), ([1, 2], '"[1,2]"')],
    ids=["other-string", "upper-case", "number", "array"],
)
def test_invalid_format_has_ollamas_text(given: object, quoted: str) -> None:
    with pytest.raises(InvalidFormat) as caught:
        validate_format(given)
    expected = f'invalid format: {quoted}; expected "json" or a valid JSON Schema object'
    assert caught.value.message == expected
    assert caught.value.status == 500
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "minItems": 3, "maxItems": 1},
        {"type": "string", "minLength": 5, "maxLength": 2},
        {"type": "integer", "minimum": 1.2, "maximum": 1.8},
        {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1},
        {"type": "object", "required": ["x"], "additionalProperties": False},
        {"type": "string", "enum": [1, 2]},
        {"$ref": "#/$defs/missing"},
        {"$ref": "https://example.com/schema.json"},
        {"type": "object", "properties": {"x": False}, "required": ["x"]},
        {"$defs": {"loop": {"$ref": "#/$defs/loop"}}, "$ref": "#/$defs/loop"},
    ],
    ids=[
        "items", "length", "no-integer", "empty-range", "required-forbidden", "enum-type",
        "missing-ref", "remote-ref", "false-schema", "ref-cycle",
    ],
)  # fmt: skip
def test_unsatisfiable_schema_raises_a_typed_error(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsatisfiableSchema) as caught:
        synthetic_json(schema, 0)
    assert caught.value.message == BAD_SCHEMA_TEXT
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"never": False, "name": {"type": "string"}}},
        {"type": "array", "items": [{"type": "integer"}, {"type": "string"}], "minItems": 2},
        {"type": "number", "minimum": 0.05, "maximum": 0.35, "multipleOf": 0.1},
        {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5},
    ],
    ids=["optional-false-left-out", "draft4-tuple", "float-multiple", "one-integer"],
)
def test_corner_cases_validate(schema: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    for seed in range(5):
        validator(schema).validate(json.loads(synthetic_json(schema, seed)))


def test_unknown_keywords_are_ignored() -> None:
    schema = {"type": "string", "pattern": "^x", "x-extension": True, "title": "T"}
    assert isinstance(json.loads(synthetic_json(schema, 1)), str)


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, "json"),
        ({"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}},
         {"type": "object"}),
        ({"type": "json_schema", "json_schema": {"name": "p"}}, None),
        ({"type": "text"}, None),
        (None, None),
    ],
    ids=["json-object", "json-schema", "schema-missing", "text", "absent"],
)  # fmt: skip
def test_openai_response_format_maps_to_native_format(
    response_format: object, expected: object
) -> None:
    assert format_from_response_format(response_format) == expected


# ----- end to end: the synthetic engine through the official client ----------------------------

MODEL = "gemma3:4b"


class FriendInfo(BaseModel):
    name: str
    age: int
    is_available: bool


class FriendList(BaseModel):
    friends: list[FriendInfo]


def test_official_clients_structured_output_example_works_unchanged(
    client: ollama.Client,
) -> None:
    # ollama-python's examples/structured-outputs.py, with our model.
    response = client.chat(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": "I have two friends. The first is Ollama 22 years old busy saving the "
                "world, and the second is Alonso 23 years old and wants to hang out. Return a "
                "list of friends in JSON format",
            }
        ],
        format=FriendList.model_json_schema(),
        options={"temperature": 0},
    )
    FriendList.model_validate_json(response.message.content or "")


def test_streamed_chat_and_generate_honour_a_schema_and_json(client: ollama.Client) -> None:
    schema = PetList.model_json_schema()
    messages = [{"role": "user", "content": "list pets"}]
    chunks = list(client.chat(model=MODEL, messages=messages, format=schema, stream=True))
    PetList.model_validate_json("".join(c.message.content or "" for c in chunks))
    assert chunks[-1].done and chunks[-1].done_reason == "stop"
    reply = client.generate(model=MODEL, prompt="give me json", format="json")
    assert isinstance(json.loads(reply.response), dict)


def test_openai_response_format_json_schema_validates(sim: SimServer) -> None:
    schema = PetList.model_json_schema()
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "list pets"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    }
    with httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as http:
        reply = http.post("/v1/chat/completions", json=body)
        content = reply.json()["choices"][0]["message"]["content"]
        jsonschema.validate(json.loads(content), schema)
        body["response_format"] = {"type": "json_object"}
        reply = http.post("/v1/chat/completions", json=body)
        assert isinstance(json.loads(reply.json()["choices"][0]["message"]["content"]), dict)


@pytest.mark.parametrize("route", ["/api/generate", "/api/chat"])
def test_a_bad_format_is_a_500_with_ollamas_text(sim: SimServer, route: str) -> None:
    # The official client refuses such a format itself, so this one goes over plain HTTP.
    body = {"model": MODEL, "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as http:
        reply = http.post(route, json={**body, "format": "yaml", "stream": False})
    assert reply.status_code == 500
    expected = r'invalid format: "\"yaml\""; expected "json" or a valid JSON Schema object'
    assert reply.json() == {"error": expected}
