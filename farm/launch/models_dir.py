"""Where models live: the seed's detection order, and the check that the chosen dir is usable.

Order: `--models-dir`, then `OLLAMA_MODELS` (the store itself), then the first existing Ollama
home with a `models/` store (`~/.ollama`, `/usr/share/ollama/.ollama`, `/var/lib/ollama/.ollama`),
else `./models`. An Ollama home is mounted at `/root/.ollama` in the container; an
`OLLAMA_MODELS` store is mounted at `/root/.ollama/models`, where the image looks for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from farm.launch.errors import PreflightError

SYSTEM_HOMES = (Path("/usr/share/ollama/.ollama"), Path("/var/lib/ollama/.ollama"))


@dataclass(frozen=True, slots=True)
class ModelsDir:
    """The chosen directory, why, and how each backend kind sees it."""

    path: Path
    is_store: bool  # True: `path` is the models store itself (OLLAMA_MODELS); else an Ollama home
    reason: str

    @property
    def store(self) -> Path:
        """The models store (what `ollama serve` gets as OLLAMA_MODELS)."""
        return self.path if self.is_store else self.path / "models"

    @property
    def container_target(self) -> str:
        """Where the directory is bind-mounted inside the ollama/ollama container."""
        return "/root/.ollama/models" if self.is_store else "/root/.ollama"


def detect(
    explicit: Path | None,
    ollama_models: str | None,
    home: Path | None,
    cwd: Path,
    system_homes: tuple[Path, ...] = SYSTEM_HOMES,
) -> ModelsDir:
    """Pick the models directory (see module docstring); never creates anything."""
    if explicit is not None:
        return ModelsDir(explicit.expanduser().absolute(), False, "given by --models-dir")
    if ollama_models:
        return ModelsDir(Path(ollama_models).expanduser().absolute(), True, "OLLAMA_MODELS is set")
    homes = ((home / ".ollama",) if home else ()) + system_homes
    for candidate in homes:
        if (candidate / "models").is_dir():
            return ModelsDir(candidate, False, f"found an existing store in {candidate}/models")
    return ModelsDir(cwd / "models", False, "no existing Ollama store found; using ./models")


def ensure_usable(models: ModelsDir) -> None:
    """Create the directory if missing; refuse one we cannot read, write and enter."""
    path = models.path
    if path.exists() and not path.is_dir():
        raise PreflightError(f"models dir {path}: exists but is not a directory")
    if path.is_dir():
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise PreflightError(f"models dir {path}: not readable and writable by this user")
        try:
            next(iter(os.scandir(path)), None)
        except OSError as exc:
            raise PreflightError(f"models dir {path}: cannot be read ({exc.strerror})") from exc
        return
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise PreflightError(f"models dir {path}: cannot be created ({exc.strerror})") from exc
