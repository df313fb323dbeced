"""What a stream's lines showed: `done_seen` (Ollama `done:true`, SSE `[DONE]`) and `eot_seen`."""

from __future__ import annotations

import json
from dataclasses import dataclass

#: The seed's end-of-turn markers, looked for in token text (not in the raw line: Go's JSON
#: encoder writes `<` and `>` as \u003c and \u003e).
EOT_MARKERS = ("<|eot_id|>", "</s>")


@dataclass(slots=True)
class LineFlags:
    """What the lines of a stream showed so far."""

    done_seen: bool = False
    eot_seen: bool = False

    def inspect(self, line: str) -> None:
        """Look for `done:true` / `data: [DONE]` and EOT markers in token text."""
        text = line.strip()
        if text.startswith("data:"):
            text = text[5:].strip()
            if text == "[DONE]":
                self.done_seen = True
                return
        try:
            obj = json.loads(text)
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        if obj.get("done") is True:
            self.done_seen = True
        if any(marker in token for token in _tokens(obj) for marker in EOT_MARKERS):
            self.eot_seen = True


def _tokens(obj: dict[str, object]) -> list[str]:
    """Token text of an Ollama generate/chat line or an OpenAI-style SSE chunk."""
    found = [obj.get("response")]
    message = obj.get("message")
    if isinstance(message, dict):
        found.append(message.get("content"))
    choices = obj.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                delta = choice.get("delta")
                found.append(choice.get("text"))
                if isinstance(delta, dict):
                    found.append(delta.get("content"))
    return [t for t in found if isinstance(t, str)]
