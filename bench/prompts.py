"""Prompt sets: seeded built-in short/medium/long prompts, or prompts loaded from a JSONL file.

Prompts are built before the clock starts and identified by a stable id, so the same id means
the same text on every target (direct, proxy, NKN) and in every run with the same seed. Every
built-in prompt starts with its own id: a different prefix per request keeps Ollama's prefix
cache from making later requests cheaper than the first.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from bench.errors import PromptError

ROLES = ("system", "user", "assistant", "tool")
_TOPICS = (
    "tide pools",
    "glass blowing",
    "railway signals",
    "bread starters",
    "lighthouse lenses",
    "migrating cranes",
    "paper making",
    "bicycle gears",
    "volcanic soil",
    "river deltas",
    "clock escapements",
    "honey bees",
    "solar sails",
    "cave paintings",
    "sea ice",
    "jazz harmony",
)
_ASKS = (
    "Explain {topic} to a curious twelve-year-old.",
    "Write a short story in which {topic} matter to the plot.",
    "List the most surprising facts about {topic} and say why each surprises.",
    "Describe how an expert would teach a week-long course on {topic}.",
    "Compare {topic} with something from everyday kitchen life.",
)
_FILLER = (
    "Consider history, physics, the people involved and what went wrong along the way.",
    "Keep the tone warm, concrete and free of jargon, and give one example per idea.",
    "Mention at least one open question that researchers still argue about today.",
    "Assume the reader has read nothing about it before and has ten minutes to spare.",
    "Use plain sentences; avoid lists unless a sequence of steps needs one.",
)
# Approximate prompt sizes in filler sentences: short ~25 words, medium ~250, long ~1000.
_SIZES = {"short": 0, "medium": 16, "long": 64}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat message (`/api/chat` and `/v1/chat/completions`)."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: either plain `text` (generate) or `messages` (chat); `kind` names its set."""

    id: str
    kind: str
    text: str | None = None
    messages: tuple[ChatMessage, ...] | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.messages is None):
            raise PromptError(f"prompt {self.id!r}: give exactly one of text and messages")


def build_prompt_set(name: str, count: int, seed: int) -> tuple[Prompt, ...]:
    """Build `count` seeded prompts of set `name` (short|medium|long|mixed); same seed, same set."""
    if name not in (*_SIZES, "mixed"):
        raise PromptError(f"unknown prompt set {name!r}; use short, medium, long, mixed or a file")
    if count < 1:
        raise PromptError(f"prompt count must be >= 1, got {count}")
    rng = random.Random(seed)
    kinds = list(_SIZES) if name == "mixed" else [name]
    prompts = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        topic = rng.choice(_TOPICS)
        ask = rng.choice(_ASKS).format(topic=topic)
        filler = " ".join(rng.choice(_FILLER) for _ in range(_SIZES[kind]))
        prompt_id = f"{kind}-{seed}-{i:04d}"
        text = f"[{prompt_id}] {ask} {filler}".strip()
        prompts.append(Prompt(id=prompt_id, kind=kind, text=text))
    return tuple(prompts)


def load_prompts(path: Path) -> tuple[Prompt, ...]:
    """Load a JSONL file: one object per line, `{"prompt": str}` or `{"messages": [...]}`,
    optionally `"id"`; blank lines are skipped. Errors name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PromptError(f"{path}: cannot read prompt file: {exc.strerror}") from exc
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        prompt = _decode_line(line, f"{path}:{number}", default_id=f"file-{number:04d}")
        if prompt.id in seen:
            raise PromptError(f"{path}:{number}: duplicate prompt id {prompt.id!r}")
        seen.add(prompt.id)
        prompts.append(prompt)
    if not prompts:
        raise PromptError(f"{path}: no prompts in file")
    return tuple(prompts)


def _decode_line(line: str, where: str, default_id: str) -> Prompt:
    """Decode one JSONL prompt line; `where` is `file:line` for error messages."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise PromptError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise PromptError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    prompt_id = obj.get("id", default_id)
    if not isinstance(prompt_id, str | int):
        raise PromptError(f"{where}: 'id' must be a string or integer")
    if "prompt" in obj and "messages" not in obj:
        if not isinstance(obj["prompt"], str) or not obj["prompt"]:
            raise PromptError(f"{where}: 'prompt' must be a non-empty string")
        return Prompt(id=str(prompt_id), kind="file", text=obj["prompt"])
    if "messages" in obj and "prompt" not in obj:
        return Prompt(id=str(prompt_id), kind="file", messages=_messages(obj["messages"], where))
    raise PromptError(f"{where}: give exactly one of 'prompt' (string) and 'messages' (list)")


def _messages(raw: object, where: str) -> tuple[ChatMessage, ...]:
    """Validate a chat message list."""
    if not isinstance(raw, list) or not raw:
        raise PromptError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for k, msg in enumerate(raw):
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
            raise PromptError(f"{where}: messages[{k}] needs a string 'content'")
        if msg.get("role") not in ROLES:
            raise PromptError(f"{where}: messages[{k}].role must be one of {ROLES}")
        out.append(ChatMessage(role=msg["role"], content=msg["content"]))
    return tuple(out)


def resolve_prompts(spec: str, count: int, seed: int) -> tuple[Prompt, ...]:
    """A built-in set name or a path to a JSONL file (anything containing / or ending .jsonl)."""
    if spec in (*_SIZES, "mixed"):
        return build_prompt_set(spec, count, seed)
    return load_prompts(Path(spec))


def prompt_set_hash(prompts: tuple[Prompt, ...]) -> str:
    """A short digest of the exact prompt texts, recorded in meta.json for reproducibility."""
    digest = hashlib.sha256()
    for p in prompts:
        payload = (
            p.text
            if p.text is not None
            else json.dumps([[m.role, m.content] for m in p.messages or ()])
        )
        digest.update(f"{p.id}\0{payload}\n".encode())
    return digest.hexdigest()[:16]
