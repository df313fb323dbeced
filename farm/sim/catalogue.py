"""The simulated registry: the few models `/api/pull` can fetch and their metadata.

Sizes, families and context lengths resemble the real models so that `/api/tags`, `/api/ps`
and `/api/show` look plausible; no weights exist. The model "weights" blob on disk is a short
placeholder, while the manifest claims the real size (documented in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.sim.names import ModelName, parse_name

CHAT_TEMPLATE = "{{ .System }}{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}"
LICENSE = "Synthetic model served by the ollama-farm simulator. No weights, no licence terms."


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One model the simulated registry knows."""

    name: str
    family: str
    parameter_size: str
    parameter_count: int
    quantization_level: str
    weights_bytes: int
    context_length: int
    embedding_length: int
    capabilities: tuple[str, ...]
    params: tuple[tuple[str, object], ...] = ()

    @property
    def model_name(self) -> ModelName:
        """The parsed, fully qualified name."""
        parsed = parse_name(self.name)
        if parsed is None:  # pragma: no cover - the table below is static
            raise ValueError(self.name)
        return parsed


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "gemma3:4b", "gemma3", "4.3B", 4_300_079_472, "Q4_K_M", 3_338_792_448, 131072, 2560,
        ("completion", "vision"), (("stop", ["<end_of_turn>"]), ("temperature", 1), ("top_k", 64)),
    ),
    CatalogueEntry(
        "llama3.2:1b", "llama", "1.2B", 1_235_814_432, "Q8_0", 1_321_082_688, 131072, 2048,
        ("completion", "tools"), (("stop", ["<|eot_id|>"]),),
    ),
    CatalogueEntry(
        "qwen3:0.6b", "qwen3", "751.63M", 751_632_384, "Q4_K_M", 522_643_360, 40960, 1024,
        ("completion", "tools", "thinking"), (("temperature", 0.6), ("top_k", 20)),
    ),
    CatalogueEntry(
        "all-minilm:latest", "bert", "23M", 22_565_376, "F16", 45_949_216, 512, 384,
        ("embedding",),
    ),
)  # fmt: skip


def find(name: ModelName) -> CatalogueEntry | None:
    """The registry entry for a name, or None (a pull then fails as Ollama's does)."""
    for entry in CATALOGUE:
        if entry.model_name.key == name.key:
            return entry
    return None
