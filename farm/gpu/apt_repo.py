"""NVIDIA's apt repository for the container toolkit: signed keyring and source list.

Follows NVIDIA's documented steps for Ubuntu 24.04: fetch `gpgkey`, dearmor it into
`/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg`, fetch the stable list and pin every
`deb https://` line to that keyring with `signed-by`. A second entry for the same repository with
another `signed-by` breaks `apt-get update` ("Conflicting values set for option Signed-By"), so
such files are detected and reported rather than silently duplicated.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

import httpx

from farm.gpu.errors import SetupError
from farm.gpu.probe import Item

KEYRING = Path("/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg")
SOURCE_LIST = Path("/etc/apt/sources.list.d/nvidia-container-toolkit.list")
REPO_MARKER = "nvidia.github.io/libnvidia-container"


def under(root: Path, path: Path) -> Path:
    """`path` (absolute) re-rooted at `root`: the sandbox seam for every file we touch."""
    return root / path.relative_to("/")


def dearmor(key: bytes) -> bytes:
    """ASCII-armored OpenPGP key -> binary keyring bytes (what `gpg --dearmor` writes).

    A key that is already binary (first byte is an OpenPGP packet tag) is returned unchanged.
    """
    if key and key[0] & 0x80:
        return key
    text = key.decode("ascii", errors="strict").replace("\r", "")
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        raise SetupError("NVIDIA's gpgkey is not an OpenPGP public key block")
    body = text.split("-----BEGIN PGP PUBLIC KEY BLOCK-----", 1)[1]
    body = body.split("-----END PGP PUBLIC KEY BLOCK-----", 1)[0]
    # Armor headers (e.g. "Version: ...") end at the first blank line; a "=XXXX" line is the CRC.
    head, sep, data = body.lstrip("\n").partition("\n\n")
    payload = data if sep else head
    lines = [ln.strip() for ln in payload.splitlines() if ln.strip() and not ln.startswith("=")]
    try:
        binary = base64.b64decode("".join(lines), validate=True)
    except binascii.Error as exc:
        raise SetupError("NVIDIA's gpgkey has a corrupt base64 body") from exc
    if not binary or not binary[0] & 0x80:
        raise SetupError("NVIDIA's gpgkey does not decode to an OpenPGP packet")
    return binary


def signed_list(upstream: str) -> str:
    """Pin every `deb https://` line of NVIDIA's list to our keyring."""
    out = []
    for line in upstream.splitlines():
        if line.startswith("deb https://"):
            line = line.replace("deb https://", f"deb [signed-by={KEYRING}] https://", 1)
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass(frozen=True, slots=True)
class RepoFiles:
    """The keyring and list contents NVIDIA currently publishes, ready to write."""

    keyring: bytes
    source_list: str


def fetch(repo_url: str, timeout_s: float = 30.0) -> RepoFiles:
    """Download NVIDIA's key and stable list; network failures become a one-line SetupError."""
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
            key = client.get(f"{repo_url}/gpgkey")
            key.raise_for_status()
            lst = client.get(f"{repo_url}/stable/deb/nvidia-container-toolkit.list")
            lst.raise_for_status()
    except httpx.HTTPError as exc:
        raise SetupError(
            f"cannot fetch NVIDIA's apt repository from {repo_url} ({exc}); "
            "run again on a network that can reach https://nvidia.github.io"
        ) from exc
    return RepoFiles(keyring=dearmor(key.content), source_list=signed_list(lst.text))


def conflicting_lists(root: Path) -> list[Path]:
    """Other apt source files that also name NVIDIA's repo (they would break apt-get update)."""
    ours = under(root, SOURCE_LIST)
    found = []
    for directory in (under(root, SOURCE_LIST.parent),):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path == ours or path.suffix not in (".list", ".sources"):
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if REPO_MARKER in text:
                found.append(path)
    return found


def check_keyring(root: Path) -> Item:
    """The keyring file exists and holds a binary OpenPGP key."""
    path = under(root, KEYRING)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Item("keyring", "missing", str(KEYRING))
    except OSError as exc:
        return Item("keyring", "wrong", f"{KEYRING}: {exc.strerror}")
    if not data or not data[0] & 0x80:
        return Item("keyring", "wrong", f"{KEYRING} is not a binary (dearmored) key")
    return Item("keyring", "ok", str(KEYRING))


def check_source_list(root: Path) -> Item:
    """Our list exists, every deb line is signed-by our keyring, and no other file conflicts."""
    others = conflicting_lists(root)
    if others:
        names = ", ".join(str(Path("/") / p.relative_to(root)) for p in others)
        return Item("apt-source", "wrong", f"conflicting entries for NVIDIA's repo in {names}")
    path = under(root, SOURCE_LIST)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Item("apt-source", "missing", str(SOURCE_LIST))
    debs = [ln for ln in text.splitlines() if ln.startswith("deb ")]
    if debs and all(f"signed-by={KEYRING}" in ln for ln in debs):
        return Item("apt-source", "ok", str(SOURCE_LIST))
    return Item("apt-source", "wrong", f"{SOURCE_LIST} has lines not signed-by {KEYRING}")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` (creating parents) only when it differs; True if written."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".farm-tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True
