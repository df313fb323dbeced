"""Pure pieces: token counting rule, deterministic text, model names, stop hold-back."""

from __future__ import annotations

import itertools

from farm.sim.generation import _first_stop, _held_back
from farm.sim.names import parse_name
from farm.sim.tokens import chat_prompt_tokens, count_tokens, generate_prompt_tokens, text_stream


def test_counting_rule_counts_words_and_punctuation() -> None:
    assert count_tokens("Hello, world!") == 4
    assert generate_prompt_tokens("Hello, world!", system="Be brief.") == 1 + 3 + 4
    assert chat_prompt_tokens(["hi", "there you"]) == 1 + (4 + 1) + (4 + 2) + 3


def test_text_is_a_function_of_seed_and_prompt() -> None:
    def take(seed: int, prompt: str) -> list[str]:
        return list(itertools.islice(text_stream(seed, prompt), 30))

    assert take(1, "p") == take(1, "p")
    assert take(1, "p") != take(2, "p") and take(1, "p") != take(1, "q")


def test_names_expand_and_display_like_ollama() -> None:
    name = parse_name("Gemma3:4B")
    assert name is not None and name.key == "registry.ollama.ai/library/gemma3:4b"
    assert parse_name("user/model").display == "user/model:latest"  # type: ignore[union-attr]
    assert parse_name("bad name") is None and parse_name("") is None


def test_stop_strings_are_cut_and_partial_matches_held_back() -> None:
    assert _first_stop("abc END tail", ("END",)) == 4
    assert _held_back("text E", ("END",)) == 1
    assert _held_back("text EN", ("END", "ENx")) == 2
    assert _held_back("text", ("END",)) == 0
