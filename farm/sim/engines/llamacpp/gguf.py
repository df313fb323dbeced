"""GGUF metadata: the key/value header and the parameter count of a model file.

Read straight from the file (format v2/v3: magic `GGUF`, version, tensor count, key/value
count, then the key/values and the tensor infos), so `/api/show` carries the model's real
`model_info` before any engine has loaded it. Arrays (the tokenizer's 262,144 tokens) are
skipped and kept as their length only, as Ollama leaves them empty unless `verbose`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from farm.sim.errors import EngineUnavailable

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True, slots=True)
class GgufInfo:
    """What the header says: key/values (arrays as their lengths) and the weights count."""

    metadata: dict[str, Any]
    array_lengths: dict[str, int]
    parameter_count: int

    @property
    def architecture(self) -> str:
        """`general.architecture`, e.g. `gemma3`."""
        return str(self.metadata.get("general.architecture", ""))

    def arch(self, key: str, default: int = 0) -> int:
        """An integer key of the architecture, e.g. `arch("context_length")`."""
        return int(self.metadata.get(f"{self.architecture}.{key}", default))


class _Reader:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self._handle.read(size)
        if len(data) != size:
            raise ValueError("the file ends inside its header")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        data = self._handle.read(length)
        if len(data) != length:
            raise ValueError("the file ends inside a string")
        return data.decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        raise ValueError(f"unknown value type {kind}")

    def skip_array(self) -> int:
        kind, count = self.unpack("<I"), self.unpack("<Q")
        if kind == _STRING:
            for _ in range(count):
                self._handle.seek(self.unpack("<Q"), 1)
        elif kind in _SCALARS:
            self._handle.seek(struct.calcsize(_SCALARS[kind]) * count, 1)
        else:
            raise ValueError(f"array of unsupported type {kind}")
        return int(count)


def read_info(path: Path) -> GgufInfo:
    """Parse the header of `path`; EngineUnavailable when it is not a readable GGUF."""
    try:
        with path.open("rb") as handle:
            return _parse(_Reader(handle), handle)
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(f"{path} is not a readable GGUF file ({exc})") from exc


def _parse(reader: _Reader, handle: BinaryIO) -> GgufInfo:
    if handle.read(4) != MAGIC:
        raise ValueError("no GGUF magic")
    version = reader.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported")
    tensors, pairs = reader.unpack("<Q"), reader.unpack("<Q")
    metadata: dict[str, Any] = {}
    arrays: dict[str, int] = {}
    for _ in range(pairs):
        key, kind = reader.string(), reader.unpack("<I")
        if kind == _ARRAY:
            arrays[key] = reader.skip_array()
        else:
            metadata[key] = reader.value(kind)
    count = 0
    for _ in range(tensors):
        reader.string()
        dims = [reader.unpack("<Q") for _ in range(reader.unpack("<I"))]
        reader.unpack("<I")  # ggml type
        reader.unpack("<Q")  # data offset
        count += math.prod(dims)
    return GgufInfo(metadata, arrays, count)
