"""The wheel serves the page: built from this tree, installed into a fresh venv, run elsewhere.

The venv gets the project's dependencies from the test interpreter's site-packages through a
`.pth` line (a plain path: the `.pth` files there, such as the editable install's finder, are
not run), so nothing is downloaded and `farm` can only come from the installed wheel.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from farm.common.childserver import ChildServer, poll_until
from farm.common.net import free_port
from farm.webdemo.app import NKN_SDK_PATH, PAGE_FILES

ROOT = Path(__file__).resolve().parents[3]
NKN_SDK = Path("relay", "bridge", "node_modules", "nkn-sdk", "dist", "nkn.min.js")
SOURCES = ("farm", "relay", "bench", "site")
SKIPPED = shutil.ignore_patterns("__pycache__", "node_modules", "certs", "*.egg-info")


@dataclass(frozen=True)
class Installed:
    """A wheel built from a copy of this tree and installed into a venv of its own."""

    wheel: Path
    python: Path
    site_packages: Path
    workdir: Path  # outside the checkout and the venv: where the server runs


def _run(argv: list[str | Path], cwd: Path | None = None) -> str:
    """Run a build or install step; its output is the failure message."""
    args = [str(a) for a in argv]
    result = subprocess.run(args, capture_output=True, text=True, timeout=90, cwd=cwd)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


def _copy_sources(src: Path) -> None:
    """What the build reads, from the working tree (so files not yet committed count too).

    A decoy private key sits in `site/certs/`, where the real one is kept, so the wheel test
    can tell that it never travels; the nkn-sdk build comes along when it is installed here.
    """
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, ignore=SKIPPED)
    (src / "site" / "certs").mkdir()
    (src / "site" / "certs" / "site-key.pem").write_text("decoy")
    if (ROOT / NKN_SDK).is_file():
        (src / NKN_SDK).parent.mkdir(parents=True)
        shutil.copy2(ROOT / NKN_SDK, src / NKN_SDK)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    src, dist, venv = base / "src", base / "dist", base / "venv"
    _copy_sources(src)
    pip = ["-m", "pip", "--disable-pip-version-check", "--no-input"]
    offline = ["--no-deps", "--no-index"]
    _run([sys.executable, *pip, "wheel", *offline, "--no-build-isolation", "-w", dist, src])
    (wheel,) = dist.glob("ollama_farm-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(_run([python, "-c", where]).strip())
    ours = sysconfig.get_paths()
    deps = sorted({ours["purelib"], ours["platlib"]})
    (site_packages / "_test_deps.pth").write_text("\n".join(deps) + "\n")
    _run([python, *pip, "install", *offline, "--ignore-installed", wheel])
    workdir = base / "elsewhere"
    workdir.mkdir()
    return Installed(wheel, python, site_packages, workdir)


class InstalledSite(ChildServer):
    """`python -m farm.webdemo` from the venv, in `workdir`, making its own certificate."""

    def __init__(self, installed: Installed) -> None:
        super().__init__()
        self.installed = installed
        self.url = f"https://127.0.0.1:{free_port()}/"
        self.cert = installed.workdir / ".farm" / "site-certs" / "site-cert.pem"
        self.log_path = installed.workdir / "site.log"

    def start(self) -> InstalledSite:
        """Start it outside the checkout and wait until `/config.json` answers over TLS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FARM_SITE_"))}
        port = self.url.rsplit(":", 1)[1].strip("/")
        argv = ["-m", "farm.webdemo", "--port", port, "--proxy-url", "http://127.0.0.1:9"]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [str(self.installed.python), *argv],
                cwd=self.installed.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        poll_until(self._ready, 30, f"the installed site answering at {self.url}")
        return self

    def _ready(self) -> bool:
        if (code := self.exited()) is not None:
            raise RuntimeError(f"site exited with {code}: {self.log_path.read_text()}")
        if not self.cert.is_file():
            return False
        try:
            self.get("config.json")
        except httpx.TransportError:
            return False
        return True

    def get(self, path: str) -> httpx.Response:
        """GET `path` over HTTPS, verifying the site's own self-signed certificate."""
        context = ssl.create_default_context(cafile=str(self.cert))
        with httpx.Client(verify=context, trust_env=False, timeout=10) as client:
            return client.get(self.url + path.lstrip("/"))


@pytest.fixture(scope="module")
def site(installed: Installed) -> Iterator[InstalledSite]:
    with InstalledSite(installed) as server:
        yield server


def test_the_wheel_carries_the_page_as_package_data_and_never_a_key(
    installed: Installed,
) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    for name, _ in PAGE_FILES.values():
        assert f"farm/webdemo/static/{name}" in names, name
    assert not [n for n in names if n.endswith(".pem") or n.split("/")[0] == "site"]


def test_the_wheel_holds_every_package_of_the_tree(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    packages = [
        init.relative_to(ROOT).as_posix()
        for top in ("farm", "relay", "bench")
        for init in (ROOT / top).rglob("__init__.py")
        if "node_modules" not in init.parts
    ]
    assert [p for p in packages if p not in names] == []


def test_the_installed_site_serves_its_page_from_package_data(installed: Installed) -> None:
    code = "from farm.webdemo.assets import locate; print(locate().page_dir)"
    page_dir = Path(_run([installed.python, "-c", code], cwd=installed.workdir).strip())
    assert page_dir == installed.site_packages / "farm" / "webdemo" / "static"


def test_the_installed_site_serves_the_page_from_outside_the_checkout(
    site: InstalledSite,
) -> None:
    for url_path, (name, media) in PAGE_FILES.items():
        response = site.get(url_path)
        assert response.status_code == 200, url_path
        assert response.headers["content-type"].split(";")[0] == media.split(";")[0]
        assert response.content == (ROOT / "site" / name).read_bytes(), url_path


def test_the_installed_site_serves_the_nkn_sdk_browser_build(site: InstalledSite) -> None:
    assert site.get("config.json").json()["nkn_sdk"] == NKN_SDK_PATH
    response = site.get(NKN_SDK_PATH)
    assert response.status_code == 200
    assert response.content == (ROOT / NKN_SDK).read_bytes()


def test_the_installed_site_keeps_its_certificate_in_the_working_directory(
    site: InstalledSite, installed: Installed
) -> None:
    assert site.cert.is_file()
    assert (site.cert.parent / "site-key.pem").is_file()
    assert not list(installed.site_packages.rglob("*.pem"))
