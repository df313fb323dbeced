"""Inference request bodies: which ones the proxy reads, their model, and option pinning.

Only small JSON bodies of inference routes are read whole (they carry the model name that
balancing needs). Everything else, blobs included, is streamed upstream untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Bodies above this are streamed unparsed even on inference routes (no model-aware routing,
# no pinning) so that a huge multimodal chat cannot make the proxy hold it in memory twice.
PARSE_LIMIT_BYTES = 32 * 1024 * 1024

# Streamed uploads: capped only by `max_body_bytes`; every other body is JSON and also has the
# front door's `client_max_body_size`.
UPLOAD_PREFIXES = ("/api/blobs/",)

INFERENCE_ROUTES = frozenset(
    {
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
    }
)
# Ollama's OpenAI-compatible /v1 routes have no `options` object: only native routes can be
# pinned.
PINNABLE_ROUTES = frozenset({"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"})


@dataclass(frozen=True, slots=True)
class Pinning:
    """Runner options a farm warmed its model with; requests that omit them get these."""

    num_ctx: int | None = None
    num_gpu: int | None = None
    model: str | None = None

    @property
    def active(self) -> bool:
        """Whether there is anything to pin."""
        return self.num_ctx is not None or self.num_gpu is not None


@dataclass(frozen=True, slots=True)
class InferenceBody:
    """A parsed inference body: the bytes to send upstream and the model it names."""

    body: bytes
    model: str | None


def canonical_model(name: str) -> str:
    """Ollama's model-name matching: case-insensitive, `:latest` when no tag is given."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def wants_parsing(method: str, path: str, content_length: int | None) -> bool:
    """Whether the proxy reads this request body whole before forwarding it."""
    return (
        method == "POST"
        and path in INFERENCE_ROUTES
        and content_length is not None
        and content_length <= PARSE_LIMIT_BYTES
    )


def inspect_body(path: str, body: bytes, pinning: Pinning) -> InferenceBody:
    """Find the model and apply pinning; bodies that are not JSON objects pass unchanged.

    Unchanged bodies keep their exact bytes: Ollama, not the proxy, reports malformed JSON.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return InferenceBody(body, None)
    if not isinstance(doc, dict):
        return InferenceBody(body, None)
    model = doc.get("model")
    model = canonical_model(model) if isinstance(model, str) and model.strip() else None
    if not (pinning.active and path in PINNABLE_ROUTES):
        return InferenceBody(body, model)
    if pinning.model is not None and model != canonical_model(pinning.model):
        return InferenceBody(body, model)
    options = doc.get("options")
    if options is None:
        options = {}
    elif not isinstance(options, dict):
        return InferenceBody(body, model)
    changed = False
    for key, value in (("num_ctx", pinning.num_ctx), ("num_gpu", pinning.num_gpu)):
        if value is not None and options.get(key) is None:
            options[key] = value
            changed = True
    if not changed:
        return InferenceBody(body, model)
    doc["options"] = options
    return InferenceBody(json.dumps(doc, separators=(",", ":")).encode(), model)
