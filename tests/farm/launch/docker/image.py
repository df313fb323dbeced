"""A stand-in for the `ollama/ollama` image, built without any registry.

The Docker Hub is out of reach, so the tests import a root filesystem tarball holding only what
the project's simulator needs: this interpreter (at the same path, so it finds its standard
library the usual way), the shared libraries it and the loaded extension modules link, the
standard library, the site-packages the simulator imports, the repository's `farm` package and
an `/bin/ollama` entrypoint. Like the real image it runs `/bin/ollama serve` with
`OLLAMA_HOST=0.0.0.0:11434`, reads the same OLLAMA_* variables (the simulator's settings do) and
keeps its models under `/root/.ollama/models` unless OLLAMA_MODELS says otherwise.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[4]
TAG = "ollama-farm/standin:test"
FARM_DIR = "/opt/ollama-farm"
# Standard-library folders the simulator never imports: most of the library's bulk.
SKIP_STDLIB = frozenset(
    {
        "site-packages",
        "test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "lib2to3",
        "__pycache__",
        "pydoc_data",
    }
)

ENTRYPOINT = """#!{python}
# Test stand-in for the ollama binary of the ollama/ollama image: `serve` becomes the simulator.
import os, sys
if sys.argv[1:2] != ["serve"]:
    print("ollama version is 0.0.0 (test stand-in)")
    sys.exit(0)
gpus = os.environ.get("NVIDIA_VISIBLE_DEVICES") or "none"
# What Ollama logs at start-up on a host without a usable GPU.
print('time=2026-01-01T00:00:00Z level=INFO source=types.go:130 msg="inference compute" '
      f'id=cpu library=cpu compute="" name=cpu visible={{gpus}}', file=sys.stderr, flush=True)
os.environ["FARM_SIM_MODELS"] = os.environ.get("OLLAMA_MODELS") or "/root/.ollama/models"
os.execv(sys.executable, [sys.executable, "-m", "farm.sim"])
"""

# Fast simulator timings, baked into the stand-in (the launcher passes only OLLAMA_* variables).
# Long answers (400 tokens at 10 ms) so that a test can cut a container mid-stream.
SIM_ENV = {
    "FARM_SIM_LOAD_MS": "20",
    "FARM_SIM_PULL_MS": "50",
    "FARM_SIM_DECODE_MS": "10",
    "FARM_SIM_RESPONSE_TOKENS": "400",
}


def _sim_modules() -> list[str]:
    """Files of every module the simulator imports when it serves (asked of a fresh process)."""
    code = (
        "import sys, farm.sim.__main__, farm.sim.app, uvicorn.loops.auto, "
        "uvicorn.protocols.http.auto, uvicorn.protocols.websockets.auto, uvicorn.lifespan.on\n"
        "for m in list(sys.modules.values()):\n"
        "    f = getattr(m, '__file__', None)\n"
        "    if f: print(f)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def _linked(binary: str) -> set[str]:
    """Shared libraries `binary` links, as `ldd` resolves them, plus the loader ldd omits."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    libs = set()
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1:
            target = parts[parts.index("=>") + 1]
            if target.startswith("/"):
                libs.add(target)
        elif parts and parts[0].startswith("/"):
            libs.add(parts[0])
    return libs


def _tree(top: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in skip and d != "__pycache__"]
        for name in filenames:
            yield Path(dirpath) / name


def _site_roots() -> list[str]:
    return sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})


def _site_packages(modules: list[str]) -> set[Path]:
    """The top-level package folders (or single modules) of site-packages the simulator uses."""
    roots = {Path(r) for r in _site_roots()}
    out: set[Path] = set()
    for f in modules:
        path = Path(f)
        for root in roots:
            if root in path.parents:
                out.add(root / path.relative_to(root).parts[0])
    return out


def rootfs() -> bytes:
    """The image's root filesystem as an uncompressed tarball."""
    python = os.path.realpath(sys.executable)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = _sim_modules()
    files: dict[str, Path] = {}
    for lib in {python} | _linked(python):
        files[lib] = Path(os.path.realpath(lib))
    for f in modules:
        if f.endswith(".so"):
            for lib in _linked(f):
                files[lib] = Path(os.path.realpath(lib))
    for path in _tree(stdlib, SKIP_STDLIB):
        files[str(path)] = path
    for top in _site_packages(modules):
        for path in _tree(top) if top.is_dir() else [top]:
            files[str(path)] = path
    for path in _tree(ROOT / "farm"):
        if path.suffix == ".py":
            files[f"{FARM_DIR}/{path.relative_to(ROOT)}"] = path
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder, mode in (("tmp", 0o1777), ("root/.ollama/models", 0o755), ("bin", 0o755)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, source in sorted(files.items()):
            tar.add(str(source), arcname=name.lstrip("/"), recursive=False)
        script = ENTRYPOINT.format(python=python).encode()
        info = tarfile.TarInfo("bin/ollama")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return buf.getvalue()


def changes() -> list[str]:
    """Dockerfile instructions applied on import: the real image's entrypoint and variables."""
    env = {
        "PATH": "/bin",
        # The site-packages keep their host paths; the interpreter has no venv to find them by.
        "PYTHONPATH": ":".join([FARM_DIR, *_site_roots()]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "OLLAMA_HOST": "0.0.0.0:11434",
        "HOME": "/root",
        **SIM_ENV,
    }
    return [
        *(f"ENV {k}={v}" for k, v in env.items()),
        'ENTRYPOINT ["/bin/ollama"]',
        'CMD ["serve"]',
        "EXPOSE 11434",
    ]


def load(client: docker.DockerClient, tarball: bytes, tag: str = TAG) -> None:
    """Import the tarball into the engine as `tag`."""
    repo, _, version = tag.rpartition(":")
    client.api.import_image_from_data(tarball, repository=repo, tag=version, changes=changes())
