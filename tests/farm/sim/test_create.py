"""`/api/create` through the official `ollama` client: every Modelfile field becomes a layer,
`/api/show` reflects it, generation takes the model's defaults, errors carry Ollama's texts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from farm.sim.child import SimServer

from .conftest import FAST

BASE = "gemma3:4b"
LAYER_LINE = re.compile(r"^(using existing|creating new) layer sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """A simulator of its own: these tests add models, which the shared one must not list."""
    with SimServer(pull_ms=10, **FAST) as server:
        yield server


@pytest.fixture
def client(sim: SimServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=sim.url) as official:
        yield official


def _raw_show(sim: SimServer, model: str) -> dict[str, Any]:
    """`/api/show` as JSON: the client's `ShowResponse` drops `system` and `messages`."""
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        body: dict[str, Any] = http.post("/api/show", json={"model": model}).json()
        return body


def _post_create(sim: SimServer, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        return http.post("/api/create", json=body)


# ----- what create writes, and what show reads back --------------------------------------------


def test_create_streams_one_status_per_layer_then_writing_manifest_and_success(
    client: ollama.Client,
) -> None:
    progress = [p.status for p in client.create(model="streamed", from_=BASE, stream=True)]
    assert progress[-2:] == ["writing manifest", "success"]
    assert progress[:-2] and all(LAYER_LINE.match(s or "") for s in progress[:-2])
    again = [p.status for p in client.create(model="streamed", from_=BASE, stream=True)]
    assert all(s.startswith("using existing layer") for s in again[:-2] if s)
    assert client.create(model="streamed", from_=BASE).status == "success"  # stream=False
    assert [m.model for m in client.list().models].count("streamed:latest") == 1


def test_show_reflects_template_parameters_license_and_parent(client: ollama.Client) -> None:
    base = client.show(BASE)
    client.create(
        model="pirate",
        from_=BASE,
        template="{{ .System }} {{ .Prompt }}",
        parameters={"temperature": 0.2, "stop": ["Arr", "Yo"], "num_ctx": 1048576},
        license=["Pirate licence", "Line one\nline two"],
    )
    shown = client.show("pirate")
    assert shown.template == "{{ .System }} {{ .Prompt }}"
    assert shown.license == f"{base.license}\nPirate licence\nLine one\nline two"
    assert shown.details is not None and shown.details.parent_model == BASE
    assert shown.details.family == base.details.family
    lines = (shown.parameters or "").splitlines()
    assert f"{'num_ctx':<30} 1.048576e+06" in lines  # Go's %#v of a float64
    assert f'{"stop":<30} "Arr"' in lines and f'{"stop":<30} "Yo"' in lines
    assert f"{'temperature':<30} 0.2" in lines
    assert f"{'top_k':<30} 64" in lines  # the base's parameters stay unless overridden


def test_show_modelfile_system_and_messages_reflect_every_field(
    sim: SimServer, client: ollama.Client, tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"GGUF" + bytes(64))
    digest = client.create_blob(adapter)
    client.create(
        model="sailor",
        from_=BASE,
        adapters={"adapter.gguf": digest},
        template="{{ .Prompt }}",
        system="You are a sailor.",
        parameters={"num_predict": 4},
        license="Sailor terms",
        messages=[{"role": "User", "content": "ahoy"}, {"role": "assistant", "content": "ahoy!"}],
    )
    modelfile = client.show("sailor").modelfile or ""
    head, body = modelfile.split("\n\n", 1)
    assert head.splitlines()[-1] == "# FROM sailor:latest"
    lines = body.splitlines()
    assert re.fullmatch(r"FROM \S+/blobs/sha256-[0-9a-f]{64}", lines[0])
    assert lines[1] == f"ADAPTER {lines[0][5:].rsplit('/', 1)[0]}/sha256-{digest[7:]}"
    assert lines[2] == "TEMPLATE {{ .Prompt }}"
    assert lines[3] == "SYSTEM You are a sailor."
    assert "PARAMETER num_predict 4" in lines
    assert lines[-3:] == ["LICENSE Sailor terms", "MESSAGE user ahoy", "MESSAGE assistant ahoy!"]
    raw = _raw_show(sim, "sailor")
    assert raw["system"] == "You are a sailor."
    assert raw["messages"] == [
        {"role": "user", "content": "ahoy"},
        {"role": "assistant", "content": "ahoy!"},
    ]


def test_recreating_a_name_replaces_its_layers(sim: SimServer, client: ollama.Client) -> None:
    client.create(model="Changing", from_=BASE, system="first")
    client.create(model="changing", from_="changing", system="second")
    assert _raw_show(sim, "changing")["system"] == "second"
    assert [m.model.lower() for m in client.list().models].count("changing:latest") == 1


def test_from_a_model_that_is_not_local_pulls_it_first(client: ollama.Client) -> None:
    progress = [p.status for p in client.create(model="tiny", from_="qwen3:0.6b", stream=True)]
    assert progress[0] == "pulling manifest"
    assert progress.index("success") < progress.index("writing manifest", progress.index("success"))
    assert progress[-1] == "success"
    assert {"tiny:latest", "qwen3:0.6b"} <= {m.model for m in client.list().models}


def test_quantize_rewrites_the_weights_of_an_f16_model(client: ollama.Client) -> None:
    client.pull("all-minilm")
    progress = list(
        client.create(model="mini-q8", from_="all-minilm", quantize="q8_0", stream=True)
    )
    quantizing = [
        p for p in progress if (p.status or "").startswith("quantizing F16 model to Q8_0")
    ]
    assert quantizing and quantizing[-1].completed == quantizing[-1].total
    assert any((p.status or "").startswith("creating new layer") for p in progress)
    shown = client.show("mini-q8")
    assert shown.details is not None and shown.details.quantization_level == "Q8_0"
    sizes = {m.model: m.size for m in client.list().models}
    assert sizes["mini-q8:latest"] < sizes["all-minilm:latest"]


# ----- the model's defaults in generation -----------------------------------------------------


def test_parameters_become_the_models_generation_defaults(client: ollama.Client) -> None:
    client.create(model="brief", from_=BASE, parameters={"num_predict": 3})
    reply = client.generate(model="brief", prompt="tell me a long story")
    assert (reply.eval_count, reply.done_reason) == (3, "length")
    longer = client.generate(model="brief", prompt="tell me", options={"num_predict": 5})
    assert longer.eval_count == 5  # request options override the model's


def test_system_prompt_is_the_default_for_generate(client: ollama.Client) -> None:
    system = "You are a terse assistant who answers in one line."
    client.create(model="terse", from_=BASE, system=system)
    default = client.generate(model="terse", prompt="hello", options={"num_predict": 1})
    explicit = client.generate(
        model=BASE, prompt="hello", system=system, options={"num_predict": 1}
    )
    bare = client.generate(model=BASE, prompt="hello", options={"num_predict": 1})
    assert default.prompt_eval_count == explicit.prompt_eval_count > bare.prompt_eval_count


def test_messages_are_prepended_to_a_chat(client: ollama.Client) -> None:
    seeded = [{"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "hi"}]
    client.create(model="seeded", from_=BASE, messages=seeded)
    question = [{"role": "user", "content": "what is my name?"}]
    options = {"num_predict": 1}
    default = client.chat(model="seeded", messages=question, options=options)
    explicit = client.chat(model=BASE, messages=seeded + question, options=options)
    assert default.prompt_eval_count == explicit.prompt_eval_count


# ----- errors: Ollama's texts and status codes ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "bad name!", "from_": BASE}, 400, "invalid model name"),
        ({"model": "x", "from_": "bad name!"}, 400, "invalid model name"),
        ({"model": "x", "from_": BASE, "template": "{{ .Prompt"}, 400,
         "template error: template: :1: unclosed action"),
        ({"model": "x", "from_": BASE, "template": "{{ if .System }}x"}, 400,
         "template error: template: :1: unexpected EOF"),
        ({"model": "x", "files": {"/abs.gguf": "sha256:" + "a" * 64}}, 400,
         "file path must be relative: /abs.gguf"),
        ({"model": "x", "from_": BASE, "adapters": {"../a.gguf": "sha256:" + "a" * 64}}, 400,
         "file path must be relative: ../a.gguf"),
        ({"model": "x", "from_": BASE, "adapters": {"a.gguf": "sha256:00"}}, 400,
         "invalid digest for a.gguf: invalid digest format"),
        ({"model": "x", "from_": BASE, "quantize": "q4_K_M"}, 500,
         "quantization is only supported for F16 and F32 models"),
        ({"model": "x", "from_": "no-such-model"}, 500, "pull model manifest: file does not exist"),
    ],
    ids=[
        "neither-from-nor-files", "invalid-name", "invalid-from", "unclosed-template",
        "unterminated-if", "absolute-file", "parent-adapter", "bad-digest", "quantize-quantized",
        "unknown-from",
    ],
)  # fmt: skip
def test_create_errors_have_ollamas_text_and_status(
    client: ollama.Client, kwargs: dict[str, Any], status: int, error: str
) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(**kwargs)
    assert (caught.value.status_code, caught.value.error) == (status, error)


def test_adapter_must_be_an_uploaded_gguf_blob(client: ollama.Client, tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_bytes(b"not a gguf file")
    digest = client.create_blob(text)
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(model="x", from_=BASE, adapters={"notes.gguf": digest})
    assert (caught.value.status_code, caught.value.error) == (
        400,
        "supplied file was not in GGUF format",
    )
    with pytest.raises(ollama.ResponseError) as caught:  # streaming: after "parsing GGUF"
        list(client.create(model="x", from_=BASE, adapters={"notes.gguf": digest}, stream=True))
    assert caught.value.error == "supplied file was not in GGUF format"
    missing = "sha256:" + "b" * 64
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(model="x", from_=BASE, adapters={"a.gguf": missing})
    assert caught.value.status_code == 400
    assert caught.value.error.endswith(f"sha256-{'b' * 64}: no such file or directory")
    assert "x:latest" not in {m.model for m in client.list().models}


def test_a_streamed_create_keeps_the_status_of_an_error_before_its_first_line(
    sim: SimServer,
) -> None:
    reply = _post_create(sim, {"model": "x", "from": BASE, "template": "{{ end }}"})
    assert reply.status_code == 400
    assert reply.json() == {"error": "template error: template: :1: unexpected {{end}}"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"license": 5}, "json: cannot unmarshal number into Go value of type []string"),
        ({"license": ["a", 1]}, "json: cannot unmarshal number into Go value of type string"),
        ({"parameters": "x"}, "json: cannot unmarshal string into Go struct field "
         "CreateRequest.parameters of type map[string]interface {}"),
        ({"messages": ["hi"]}, "json: cannot unmarshal string into Go struct field "
         "CreateRequest.messages of type api.Message"),
        ({"adapters": {"a.gguf": 1}}, "json: cannot unmarshal number into Go struct field "
         "CreateRequest.adapters of type string"),
    ],
    ids=["license-number", "license-item", "parameters", "messages", "adapter-digest"],
)  # fmt: skip
def test_wrong_field_types_are_400_with_gos_decoder_text(
    sim: SimServer, body: dict[str, Any], error: str
) -> None:
    reply = _post_create(sim, {"model": "x", "from": BASE, **body})
    assert (reply.status_code, reply.json()) == (400, {"error": error})
