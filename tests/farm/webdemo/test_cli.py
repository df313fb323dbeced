"""`python -m farm.webdemo`: prints its URL, makes the certificate once, reports bad flags, and
stops promptly on SIGTERM without leaving a process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from farm.common.childserver import poll_until
from farm.webdemo.child import SiteServer
from farm.webdemo.server import prepare_certificate
from farm.webdemo.settings import SiteSettings


def test_the_server_prints_the_url_it_serves(tmp_path: Path) -> None:
    with SiteServer(tmp_path, SiteSettings(proxy_url="http://127.0.0.1:8080")) as site:
        assert site.printed == f"ollama-farm demo site: {site.url}"


def test_first_run_makes_the_certificate_and_later_runs_keep_it(tmp_path: Path) -> None:
    cert, key = prepare_certificate(SiteSettings(), tmp_path)
    assert (cert.parent, key.parent) == (tmp_path, tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = cert.read_bytes()
    assert prepare_certificate(SiteSettings(), tmp_path) == (cert, key)
    assert cert.read_bytes() == first


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
    assert "Traceback" not in result.stderr


def test_a_bad_flag_value_stops_the_cli_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "farm.webdemo", "--proxy-url", "localhost:8080"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "error: --proxy-url 'localhost:8080': must be an http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr


def _post_rpc(site: SiteServer, outcome: list[str]) -> None:
    """POST one seed RPC call to the site and record how it ended (it never gets an answer)."""
    call = json.dumps({"id": "1", "jsonrpc": "2.0", "method": "getwsaddr", "params": {}})
    request = urllib.request.Request(
        f"{site.url}nkn-rpc", call.encode(), {"content-type": "application/json"}
    )
    context = ssl.create_default_context(cafile=str(site.cert))
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as response:
            outcome.append(f"status {response.status}")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        outcome.append(f"failed: {exc}")


def test_sigterm_mid_request_stops_the_server_and_its_children_within_5_s(
    tmp_path: Path,
) -> None:
    # A seed node that accepts connections (the kernel's backlog) and never answers: the site's
    # forwarder would wait its full 10 s timeout for it.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        rpc = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        site = SiteServer(tmp_path, SiteSettings(nkn_rpc=rpc)).start()
        try:
            children = psutil.Process(site.pid).children(recursive=True)
            outcome: list[str] = []
            client = threading.Thread(target=_post_rpc, args=(site, outcome), daemon=True)
            client.start()
            silent.settimeout(10)
            upstream, _ = silent.accept()  # the call is now in flight at the site
            with upstream:
                os.kill(site.pid, signal.SIGTERM)
                started = time.monotonic()
                poll_until(lambda: site.exited() is not None, 5, "the site exited after SIGTERM")
                _, alive = psutil.wait_procs(children, timeout=5 - (time.monotonic() - started))
                assert alive == []
            client.join(10)
            assert outcome and outcome[0].startswith(("failed", "status 5")), outcome
        finally:
            site.stop()
