"""`python -m farm.webdemo`: prints its URL, makes the certificate once, reports bad flags."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from farm.webdemo.child import SiteServer
from farm.webdemo.config import SiteConfig
from farm.webdemo.server import prepare_certificate


def test_the_server_prints_the_url_it_serves(tmp_path: Path) -> None:
    with SiteServer(tmp_path, proxy_url="http://127.0.0.1:8080") as site:
        assert site.printed == f"ollama-farm demo site: {site.url}"


def test_first_run_makes_the_certificate_and_later_runs_keep_it(tmp_path: Path) -> None:
    config = SiteConfig(cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    prepare_certificate(config)
    assert stat.S_IMODE(config.key.stat().st_mode) == 0o600
    first = config.cert.read_bytes()
    prepare_certificate(config)
    assert config.cert.read_bytes() == first


def test_a_missing_user_certificate_stops_the_cli_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "mine.pem"
    result = subprocess.run(
        [sys.executable, "-m", "farm.webdemo", "--cert", str(missing), "--key", str(missing)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"error: {missing} does not exist" in result.stderr


def test_a_bad_flag_value_stops_the_cli_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "farm.webdemo", "--proxy-url", "localhost:8080"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "proxy URL must be an http(s) URL" in result.stderr
