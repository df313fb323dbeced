"""Ollama model names: which `[host/][namespace/]model[:tag]` references Ollama would accept.

The rules follow Ollama's name parts (types/model/name.go): each part starts with a letter,
digit or underscore, then up to 79 more of letters, digits, `_`, `-`, `.`; the host part may be
longer and carry `:port`. A digest suffix (`@sha256:...`) is not checked here.
"""

from __future__ import annotations

import re

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,349}(:[0-9]{1,5})?")


def validate_model_name(name: str) -> str:
    """Return `name` if Ollama would accept it; else ValueError saying what is wrong with it
    (the settings layer puts `--model 'name':` in front)."""
    if not name or name != name.strip():
        raise ValueError("a model name is required, e.g. gemma3:4b")
    ref = name.split("@", 1)[0]
    parts = ref.split("/")
    model, sep, tag = parts[-1].partition(":")
    if sep and not _PART.fullmatch(tag):
        raise ValueError(
            f"bad tag {tag!r} (a tag is letters, digits, '_', '-', '.'; e.g. gemma3:4b)"
        )
    if len(parts) > 3 or not _PART.fullmatch(model):
        raise ValueError("not a valid Ollama model name (e.g. gemma3:4b)")
    for i, part in enumerate(parts[:-1]):
        pattern = _HOST if i == 0 and len(parts) == 3 else _PART
        if not pattern.fullmatch(part):
            raise ValueError(f"bad name part {part!r}")
    return name
