"""Synthetic tokens: the documented prompt-token counting rule and deterministic output text.

Counting rule (documented in the README): a "token" is a run of word characters or a single
punctuation character (`\\w+|[^\\w\\s]`). A generate prompt counts 1 (BOS) + tokens(system) +
tokens(prompt); a chat counts 1 + sum over messages of (4 + tokens(content)) + 3 for the
assistant header the template opens. `/v1` requests are counted after conversion to native.

Output text: a stream of English-looking words drawn by `random.Random` seeded with the
request's `seed` option (or the server seed) and the prompt, so the same seed and prompt
always give the same text. Without `num_predict` the text ends ("EOS") after a length drawn
from the configured range (`--response-tokens`, default 24:96) by the same generator.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterator, Sequence

_TOKEN = re.compile(r"\w+|[^\w\s]")
VOCAB_SIZE = 262_144
_WORDS = (
    "the model answers questions about streams slots tokens and time while the server keeps "
    "one warm copy in memory so every request shares a batch of work on the device and a "
    "proxy forwards each line as soon as it arrives from the backend without buffering it "
    "because latency matters more than throughput for people reading text as it appears"
).split()


def count_tokens(text: str) -> int:
    """Tokens in a text under the simulator's rule (words and punctuation marks)."""
    return len(_TOKEN.findall(text))


def generate_prompt_tokens(prompt: str, system: str = "") -> int:
    """`prompt_eval_count` of a generate request: BOS + system + prompt."""
    return 1 + count_tokens(system) + count_tokens(prompt)


def chat_prompt_tokens(contents: Sequence[str]) -> int:
    """`prompt_eval_count` of a chat: BOS + 4 framing tokens per message + the assistant header."""
    return 1 + sum(4 + count_tokens(content) for content in contents) + 3


def token_ids(text: str) -> list[int]:
    """Stable synthetic ids for a text (used for generate's `context`)."""
    return [zlib.crc32(piece.encode()) % VOCAB_SIZE for piece in _TOKEN.findall(text)]


def text_stream(seed: int, prompt: str) -> Iterator[str]:
    """Yield output pieces forever; the text depends only on (seed, prompt).

    The caller decides when to stop (num_predict, stop strings, or `natural_length`).
    """
    rng = random.Random(f"{seed}\x00{prompt}")
    capital, first = True, True
    while True:
        word = rng.choice(_WORDS)
        piece = word.capitalize() if capital else word
        yield piece if first else " " + piece
        capital, first = False, False
        roll = rng.random()
        if roll < 0.08:
            yield "."
            capital = True
        elif roll < 0.14:
            yield ","


def natural_length(seed: int, prompt: str, low: int, high: int) -> int:
    """How many tokens (in [low, high]) the model "wants" to produce before EOS."""
    rng = random.Random(f"eos\x00{seed}\x00{prompt}")
    return rng.randint(low, high)


def thinking_length(seed: int, prompt: str) -> int:
    """How many tokens a thinking model reasons before answering."""
    rng = random.Random(f"think\x00{seed}\x00{prompt}")
    return rng.randint(8, 32)
