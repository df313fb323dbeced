"""The plain prompt template of the base model, whose GGUF carries no chat template.

A generate prompt goes in as written (after the system text and a blank line, when there is
one): a base model continues text. A chat becomes a transcript that ends where the assistant
speaks next; the stop string `\\nUser:` ends the answer where the model would start writing
the user's next turn:

    <system>

    User: <content>
    Assistant: <content>
    User: <content>
    Assistant:

`TEMPLATE` is the same rule in Ollama's Go template syntax, shown by `/api/show`.
"""

from __future__ import annotations

from farm.sim.engines.base import PromptInput

NAME = "plain (User:/Assistant: transcript; the GGUF has no chat template)"
TEMPLATE = (
    "{{- if .Messages }}{{ if .System }}{{ .System }}\n\n{{ end }}"
    '{{- range .Messages }}{{ if eq .Role "user" }}User: {{ .Content }}\n'
    '{{ else if eq .Role "assistant" }}Assistant: {{ .Content }}\n{{ end }}{{ end }}Assistant:'
    "{{- else }}{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}{{ end }}"
)
STOP = ("\nUser:",)
_SPEAKERS = {"user": "User", "assistant": "Assistant"}


def render(prompt: PromptInput) -> str:
    """The text the engine evaluates for this request (after any `context` tokens)."""
    if prompt.messages is None:
        if prompt.raw or not prompt.system:
            return prompt.prompt
        return f"{prompt.system}\n\n{prompt.prompt}"
    system = "\n".join(m.content for m in prompt.messages if m.role == "system" and m.content)
    lines = [f"{system}\n\n"] if system else []
    for message in prompt.messages:
        speaker = _SPEAKERS.get(message.role)
        if speaker is not None:
            lines.append(f"{speaker}: {message.content}\n")
    lines.append("Assistant:")
    return "".join(lines)
