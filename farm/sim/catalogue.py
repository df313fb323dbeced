"""The simulated registry: the few models `/api/pull` can fetch and their metadata.

Sizes, families, context lengths and the attention shape (layers, KV heads, key and value
lengths: what a KV cache's size follows from) are the real models' GGUF values, so that
`/api/tags`, `/api/ps` and `/api/show` read as a real Ollama's; no weights exist. The model
"weights" blob on disk is a short placeholder, while the manifest claims the real size
(documented in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.sim.names import ModelName, parse_name

CHAT_TEMPLATE = "{{ .System }}{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}"
LICENSE = "Synthetic model served by the ollama-farm simulator. No weights, no licence terms."


@dataclass(frozen=True, slots=True)
class Shape:
    """The GGUF architecture keys of a model (`<arch>.block_count`, ...); 0 means "absent"
    (an encoder such as BERT has no separate KV heads or key/value lengths)."""

    block_count: int
    head_count: int
    head_count_kv: int
    key_length: int
    value_length: int
    feed_forward_length: int
    file_type: int  # llama.cpp's ftype: 1 F16, 7 Q8_0, 15 Q4_K_M
    tokenizer: str
    sliding_window: int = 0  # tokens a local (sliding-window) layer attends to


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
    shape: Shape
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
        ("completion", "vision"), Shape(34, 8, 4, 256, 256, 10240, 15, "llama", 1024),
        (("stop", ["<end_of_turn>"]), ("temperature", 1), ("top_k", 64)),
    ),
    CatalogueEntry(
        "llama3.2:1b", "llama", "1.2B", 1_235_814_432, "Q8_0", 1_321_082_688, 131072, 2048,
        ("completion", "tools"), Shape(16, 32, 8, 64, 64, 8192, 7, "gpt2"),
        (("stop", ["<|eot_id|>"]),),
    ),
    CatalogueEntry(
        "qwen3:0.6b", "qwen3", "751.63M", 751_632_384, "Q4_K_M", 522_643_360, 40960, 1024,
        ("completion", "tools", "thinking"), Shape(28, 16, 8, 128, 128, 3072, 15, "gpt2"),
        (("temperature", 0.6), ("top_k", 20)),
    ),
    CatalogueEntry(
        "all-minilm:latest", "bert", "23M", 22_565_376, "F16", 45_949_216, 512, 384,
        ("embedding",), Shape(6, 12, 0, 0, 0, 1536, 1, "bert"),
    ),
)  # fmt: skip


def find(name: ModelName) -> CatalogueEntry | None:
    """The registry entry for a name, or None (a pull then fails as Ollama's does)."""
    for entry in CATALOGUE:
        if entry.model_name.key == name.key:
            return entry
    return None


def model_info(entry: CatalogueEntry) -> dict[str, object]:
    """`/api/show`'s `model_info` for a catalogue model: GGUF keys, sorted as Ollama sorts them.

    Keys whose value is 0 in the shape are left out, as the GGUF of such a model has none."""
    arch, shape = entry.family, entry.shape
    info: dict[str, object] = {
        "general.architecture": arch,
        "general.file_type": shape.file_type,
        "general.parameter_count": entry.parameter_count,
        "general.quantization_version": 2,
        f"{arch}.attention.head_count": shape.head_count,
        f"{arch}.attention.head_count_kv": shape.head_count_kv,
        f"{arch}.attention.key_length": shape.key_length,
        f"{arch}.attention.sliding_window": shape.sliding_window,
        f"{arch}.attention.value_length": shape.value_length,
        f"{arch}.block_count": shape.block_count,
        f"{arch}.context_length": entry.context_length,
        f"{arch}.embedding_length": entry.embedding_length,
        f"{arch}.feed_forward_length": shape.feed_forward_length,
        "tokenizer.ggml.model": shape.tokenizer,
    }
    return dict(sorted((k, v) for k, v in info.items() if v != 0))
