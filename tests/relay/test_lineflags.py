"""Line flags: `done_seen` and `eot_seen` from Ollama NDJSON and OpenAI-style SSE lines."""

from __future__ import annotations

import pytest

from relay.lineflags import LineFlags


@pytest.mark.parametrize(
    ("lines", "done", "eot"),
    [
        (['{"response":"hi"}', '{"done":true}'], True, False),
        (['{"message":{"content":"bye<|eot_id|>"}}'], False, True),
        (['data: {"choices":[{"delta":{"content":"x</s>"}}]}', "data: [DONE]"], True, True),
        (['{"response":"\\u003c/s\\u003e"}'], False, True),  # Go escapes < and >
        (['{"done":"yes"}', "not json", "[1, 2]"], False, False),
    ],
    ids=["ollama-done", "chat-eot", "sse-done-and-eot", "escaped-eot", "neither"],
)
def test_flags_follow_what_the_lines_said(lines: list[str], done: bool, eot: bool) -> None:
    flags = LineFlags()
    for line in lines:
        flags.inspect(line)
    assert (flags.done_seen, flags.eot_seen) == (done, eot)
