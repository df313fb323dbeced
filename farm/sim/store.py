"""The local model store: manifests and content-addressed blobs on disk.

The layout matches Ollama's (`manifests/<host>/<namespace>/<model>/<tag>`, `blobs/sha256-<hex>`)
so `/api/tags` digests are the sha256 of the manifest bytes and `modified_at` is the manifest's
mtime. An in-memory index mirrors the disk so request handlers never read files on the loop;
writes go through `asyncio.to_thread`.

Each model's text layers are read once into a `ModelRecord` (template, system prompt, default
parameters, seed messages, licences, adapters, parent), which is what `/api/show` renders and
what generation takes its defaults from, as Ollama's `GetModel` reads the same layers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.sim.catalogue import CHAT_TEMPLATE, LICENSE, CatalogueEntry, model_info
from farm.sim.errors import BadRequest
from farm.sim.modelfile import DEFAULT_TEMPLATE, ModelRecord
from farm.sim.names import ModelName, parse_name

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
LAYER_TYPE = "application/vnd.ollama.image."
_TEXT_KINDS = ("template", "prompt", "system", "params", "messages", "license")


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A model present in the store: its manifest digest, size, mtime and config."""

    name: ModelName
    digest: str
    size: int
    modified_at: float
    config: dict[str, Any]
    layers: tuple[dict[str, Any], ...]
    texts: dict[str, str] = field(default_factory=dict)
    record: ModelRecord = field(default_factory=ModelRecord)

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What the model can do (`completion`, `tools`, `embedding`, ...)."""
        return tuple(self.config.get("capabilities", ()))

    def details(self) -> dict[str, Any]:
        """The `details` object of tags/ps/show, read from the config blob."""
        return {
            "parent_model": self.record.parent_model,
            "format": self.config.get("model_format", "gguf"),
            "family": self.config.get("model_family", ""),
            "families": self.config.get("model_families"),
            "parameter_size": self.config.get("model_type", ""),
            "quantization_level": self.config.get("file_type", ""),
        }


def digest_hex(digest: str) -> str:
    """Validate `sha256:<hex>` / `sha256-<hex>` and return the hex; 400 otherwise."""
    match = DIGEST_RE.match(digest)
    if match is None:
        raise BadRequest("invalid digest format")
    return match.group(1)


class Store:
    """Manifests + blobs under `root`, with an in-memory index keyed by `ModelName.key`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.manifests = root / "manifests"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, LocalModel] = {}
        self._scan()

    # ----- reading (in memory) -------------------------------------------------------------
    def get(self, name: ModelName) -> LocalModel | None:
        """The local model with this name, or None."""
        return self._index.get(name.key)

    def models(self) -> list[LocalModel]:
        """All local models, newest first (as `/api/tags` sorts them)."""
        return sorted(self._index.values(), key=lambda m: m.modified_at, reverse=True)

    def blob_path(self, hex_digest: str) -> Path:
        """Where a blob lives (`:` in the digest becomes `-`)."""
        return self.blobs / f"sha256-{hex_digest}"

    # ----- writing ---------------------------------------------------------------------------
    def install(self, entry: CatalogueEntry, name: ModelName | None = None) -> LocalModel:
        """Write a catalogue model's blobs and manifest (blocking; call in a thread)."""
        layers = [
            self._put_blob(f"synthetic weights: {entry.name}\n".encode(), "model"),
            self._put_blob(CHAT_TEMPLATE.encode(), "template"),
            self._put_blob(LICENSE.encode(), "license"),
            self._put_blob(json.dumps(dict(entry.params)).encode(), "params"),
        ]
        # The weights placeholder claims the real model size so sizes look right.
        layers[0]["size"] = entry.weights_bytes
        config = {
            "model_format": "gguf",
            "model_family": entry.family,
            "model_families": [entry.family],
            "model_type": entry.parameter_size,
            "file_type": entry.quantization_level,
            "architecture": "amd64",
            "os": "linux",
            "capabilities": list(entry.capabilities),
            "context_length": entry.context_length,
            "embedding_length": entry.embedding_length,
            "parameter_count": entry.parameter_count,
            # Ollama reads these from the GGUF; with no GGUF here, the config carries them.
            "model_info": model_info(entry),
        }
        manifest = self._manifest(config, layers)
        return self._write_manifest(name or entry.model_name, manifest)

    def manifest_layers(self, entry: CatalogueEntry) -> list[dict[str, Any]]:
        """The layers a pull of this entry transfers (digest, claimed size), without writing."""
        return [
            {"digest": "sha256:" + hashlib.sha256(f"synthetic weights: {entry.name}\n".encode())
             .hexdigest(), "size": entry.weights_bytes},
            {"digest": "sha256:" + hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest(),
             "size": len(CHAT_TEMPLATE)},
            {"digest": "sha256:" + hashlib.sha256(LICENSE.encode()).hexdigest(),
             "size": len(LICENSE)},
        ]  # fmt: skip

    def copy(self, source: LocalModel, destination: ModelName) -> LocalModel:
        """Write the source's manifest under a new name (blocking)."""
        manifest = self._manifest_path(source.name).read_bytes()
        return self._write_manifest(destination, manifest)

    def delete(self, model: LocalModel) -> None:
        """Remove a manifest and prune blobs no other manifest references (blocking)."""
        self._manifest_path(model.name).unlink(missing_ok=True)
        self._index.pop(model.name.key, None)
        self._prune(model)

    def put_blob(self, data: bytes, kind: str) -> tuple[dict[str, Any], bool]:
        """Store `data` as a layer of media type `kind`; the layer and whether it is new."""
        created = not self.blob_path(hashlib.sha256(data).hexdigest()).exists()
        return self._put_blob(data, kind), created

    def blob_head(self, hex_digest: str, size: int) -> bytes | None:
        """The first `size` bytes of a blob, or None when it is absent (blocking)."""
        try:
            with self.blob_path(hex_digest).open("rb") as handle:
                return handle.read(size)
        except FileNotFoundError:
            return None

    def write_model(
        self, name: ModelName, config: dict[str, Any], layers: list[dict[str, Any]]
    ) -> LocalModel:
        """Write a config blob and manifest for `layers` (blocking), as `/api/create` does.

        Blobs only the replaced manifest of the same name referenced are pruned afterwards.
        """
        config = {key: value for key, value in config.items() if key != "_digest"}
        manifest = self._manifest(config, layers)
        previous = self._index.get(name.key)
        model = self._write_manifest(previous.name if previous else name, manifest)
        if previous is not None:
            self._prune(previous)
        return model

    async def write_blob(self, hex_digest: str, chunks: AsyncIterator[bytes]) -> bool:
        """Stream a request body into `blobs/`, verifying the digest; True if newly created.

        The body goes to a temporary file chunk by chunk (never held in memory) and is renamed
        into place only when its sha256 matches.
        """
        final = self.blob_path(hex_digest)
        if final.exists():
            return False
        tmp = final.with_name(f"{final.name}-partial-{os.getpid()}-{id(chunks)}")
        hasher = hashlib.sha256()
        handle = await asyncio.to_thread(tmp.open, "wb")
        try:
            async for chunk in chunks:
                hasher.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        got = hasher.hexdigest()
        if got != hex_digest:
            tmp.unlink(missing_ok=True)
            raise BadRequest(f'digest mismatch, expected "sha256:{hex_digest}", got "sha256:{got}"')
        await asyncio.to_thread(os.replace, tmp, final)
        return True

    # ----- internals -------------------------------------------------------------------------
    def _prune(self, gone: LocalModel) -> None:
        referenced = {layer["digest"] for m in self._index.values() for layer in m.layers}
        referenced |= {m.config["_digest"] for m in self._index.values()}
        for digest in [layer["digest"] for layer in gone.layers] + [gone.config["_digest"]]:
            if digest not in referenced:
                self.blob_path(digest_hex(digest)).unlink(missing_ok=True)

    def _manifest(self, config: dict[str, Any], layers: list[dict[str, Any]]) -> bytes:
        """Store `config` as a blob and return the manifest naming it and `layers`."""
        config_layer = self._put_blob(json.dumps(config).encode(), "config")
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {**config_layer, "mediaType": CONFIG_TYPE},
            "layers": layers,
        }
        return json.dumps(manifest).encode()

    def _put_blob(self, data: bytes, kind: str) -> dict[str, Any]:
        hex_digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(hex_digest)
        if not path.exists():
            path.write_bytes(data)
        media = {"config": CONFIG_TYPE}.get(kind, f"application/vnd.ollama.image.{kind}")
        return {"mediaType": media, "digest": f"sha256:{hex_digest}", "size": len(data)}

    def _manifest_path(self, name: ModelName) -> Path:
        return self.manifests.joinpath(*name.manifest_parts)

    def _write_manifest(self, name: ModelName, manifest: bytes) -> LocalModel:
        path = self._manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(manifest)
        model = self._read(name, path)
        self._index[name.key] = model
        return model

    def _read(self, name: ModelName, path: Path) -> LocalModel:
        raw = path.read_bytes()
        manifest = json.loads(raw)
        config_digest = manifest["config"]["digest"]
        config = json.loads(self.blob_path(digest_hex(config_digest)).read_bytes())
        config["_digest"] = config_digest  # kept beside the config so delete can prune it
        layers = tuple(manifest.get("layers", ()))
        size = manifest["config"]["size"] + sum(layer["size"] for layer in layers)
        record, texts = self._record(layers)
        return LocalModel(
            name=name,
            digest=hashlib.sha256(raw).hexdigest(),
            size=size,
            modified_at=path.stat().st_mtime,
            config=config,
            layers=layers,
            texts=texts,
            record=record,
        )

    def _record(self, layers: tuple[dict[str, Any], ...]) -> tuple[ModelRecord, dict[str, str]]:
        """Read the text layers (Ollama's GetModel): the record and the raw texts by kind."""
        paths: dict[str, list[str]] = {}
        texts: dict[str, list[str]] = {}
        parent = ""
        for layer in layers:
            kind = layer["mediaType"].removeprefix(LAYER_TYPE)
            blob = self.blob_path(digest_hex(layer["digest"]))
            paths.setdefault(kind, []).append(str(blob))
            if kind == "model":
                parent = layer.get("from", "")
            if kind in _TEXT_KINDS and blob.exists():
                texts.setdefault("template" if kind == "prompt" else kind, []).append(
                    blob.read_text()
                )
        last = {kind: values[-1] for kind, values in texts.items()}
        record = ModelRecord(
            model_path=(paths.get("model") or [""])[0],
            parent_model=parent,
            adapters=tuple(paths.get("adapter", ())),
            template=last.get("template", DEFAULT_TEMPLATE),
            system=last.get("system", ""),
            parameters=json.loads(last.get("params") or "{}"),
            messages=tuple(json.loads(last.get("messages") or "[]")),
            licenses=tuple(texts.get("license", ())),
        )
        if "license" in texts:
            last["license"] = "\n".join(texts["license"])
        return record, last

    def _scan(self) -> None:
        for path in self.manifests.glob("*/*/*/*"):
            if not path.is_file():
                continue
            host, namespace, model, tag = path.relative_to(self.manifests).parts
            name = parse_name(f"{host}/{namespace}/{model}:{tag}")
            if name is not None:
                self._index[name.key] = self._read(name, path)
