"""The reference streaming proxy the proxy benchmark compares against: nginx, zero buffering.

`NGINX_CONF` is nginx configured as a streaming proxy should be (no proxy or request buffering,
no gzip, keep-alive upstream connections); `nginx_proxy` runs it in a temporary prefix in
front of a backend port. nginx comes from Debian (`nginx-light`, or `nginx` where the release
has no light build) when it is missing and the process runs as root with apt (`find_nginx`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from farm.common.net import free_port

log = logging.getLogger(__name__)
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream ollama {{ server 127.0.0.1:{backend_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / {{
      proxy_pass http://ollama;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # With an upstream block nginx would send `Host: ollama` (the group's name), which
      # Ollama's loopback host guard rejects with 403; name the real backend instead.
      proxy_set_header Host 127.0.0.1:{backend_port};
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_cache off;
      gzip off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
}}
"""


@dataclass(frozen=True, slots=True)
class RunningNginx:
    """A started nginx: its URL and its master's pid (workers are its children)."""

    url: str
    pid: int


def find_nginx(install: bool, environ: Mapping[str, str]) -> str | None:
    """The nginx binary, installing it from Debian first when allowed and missing (apt-get
    runs with `environ`): `nginx-light` where the release has it (bookworm), else `nginx`."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found or not install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    log.info("installing nginx from Debian's packages (setup step)")
    env = {**environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True).returncode:
        return None
    for package in ("nginx-light", "nginx"):
        argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
        if subprocess.run(argv, env=env, capture_output=True).returncode == 0:
            return shutil.which("nginx") or "/usr/sbin/nginx"
    return None


@contextmanager
def nginx_proxy(binary: str, backend_port: int) -> Iterator[RunningNginx]:
    """Run nginx with the zero-buffering config in a temp prefix until the block ends."""
    with tempfile.TemporaryDirectory(prefix="farm-bench-nginx-") as tmp:
        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, backend_port=backend_port, user=user))
        proc = subprocess.Popen([binary, "-p", tmp, "-c", str(conf)], stderr=subprocess.PIPE)
        try:
            _wait_http(f"http://127.0.0.1:{port}/api/version", proc)
            yield RunningNginx(f"http://127.0.0.1:{port}", proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} not answering")
