"""Ollama model names: `[host/][namespace/]model[:tag]`, defaults, validation, display form."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,349}$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")


@dataclass(frozen=True, slots=True)
class ModelName:
    """A fully qualified model name; comparisons use `key` (case-insensitive, as Ollama)."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def key(self) -> str:
        """The case-folded full name used to match models."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()

    @property
    def display(self) -> str:
        """The shortest form Ollama lists: host and `library` namespace dropped, tag kept."""
        prefix = ""
        if self.host != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def manifest_parts(self) -> tuple[str, str, str, str]:
        """The store path components `host/namespace/model/tag`."""
        return (self.host, self.namespace, self.model, self.tag)


def parse_name(text: str) -> ModelName | None:
    """Parse and validate a model name; None when it is not a valid Ollama name."""
    if not text or text != text.strip():
        return None
    rest, tag = text, DEFAULT_TAG
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
    parts = rest.split("/")
    if len(parts) == 1:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, namespace, model = DEFAULT_HOST, parts[0], parts[1]
    elif len(parts) == 3:
        host, namespace, model = parts
    else:
        return None
    if not (
        _HOST.match(host) and _PART.match(namespace) and _PART.match(model) and _TAG.match(tag)
    ):
        return None
    return ModelName(host, namespace, model, tag)
