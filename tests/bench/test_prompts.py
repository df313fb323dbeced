"""Prompt sets: seeded and stable, JSONL files validated with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import PromptError
from bench.payload import build_payload
from bench.prompts import build_prompt_set, load_prompts, prompt_set_hash, resolve_prompts


def test_same_seed_same_prompts_and_different_seed_different_prompts() -> None:
    a, b = build_prompt_set("mixed", 12, seed=7), build_prompt_set("mixed", 12, seed=7)
    assert a == b and prompt_set_hash(a) == prompt_set_hash(b)
    assert prompt_set_hash(build_prompt_set("mixed", 12, seed=8)) != prompt_set_hash(a)


def test_sizes_grow_from_short_to_long_and_every_prompt_has_its_own_prefix() -> None:
    lengths = {k: len(build_prompt_set(k, 4, 1)[0].text or "") for k in ("short", "medium", "long")}
    assert lengths["short"] < lengths["medium"] < lengths["long"]
    prompts = build_prompt_set("mixed", 30, 1)
    assert len({(p.text or "")[:20] for p in prompts}) == 30  # no shared prefix cache hits
    assert {p.kind for p in prompts} == {"short", "medium", "long"}


def test_jsonl_file_with_prompts_and_chat_messages(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "Why is the sky blue?"}\n\n'
        '{"messages": [{"role": "system", "content": "Be brief."}, '
        '{"role": "user", "content": "Hi"}]}\n'
    )
    first, second = load_prompts(path)
    assert (first.id, first.text) == ("a", "Why is the sky blue?")
    assert second.id == "file-0003" and second.messages is not None
    assert build_payload(second, api="ollama", model="m", max_tokens=5, seed=1).path == "/api/chat"
    sse = build_payload(first, api="openai", model="m", max_tokens=5, seed=1)
    assert (sse.path, sse.framing, sse.body["max_tokens"]) == ("/v1/completions", "sse", 5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "p.jsonl:1: not valid JSON"),
        ('["x"]', "expected a JSON object"),
        ('{"prompt": ""}', "'prompt' must be a non-empty string"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "messages[0].role"),
        ('{"prompt": "a", "messages": []}', "exactly one of"),
    ],
    ids=["bad-json", "array", "empty-prompt", "bad-role", "both"],
)
def test_bad_prompt_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(PromptError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_prompts(path)


def test_missing_file_and_unknown_set_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="cannot read prompt file"):
        resolve_prompts(str(tmp_path / "nope.jsonl"), 4, 1)
    with pytest.raises(PromptError, match="unknown prompt set"):
        build_prompt_set("huge", 4, 1)
