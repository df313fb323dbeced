"""`SiteServer`: run `python -m farm.webdemo` as a subprocess on a free port, for tests."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from farm.common.childserver import ChildServer
from farm.common.net import free_port
from farm.settings import to_argv
from farm.webdemo.certs import ensure_certificate
from farm.webdemo.server import CERT_NAME, KEY_NAME
from farm.webdemo.settings import SiteSettings

__all__ = ["SiteServer"]


class SiteServer(ChildServer):
    """The demo site over HTTPS on loopback, ready on `__enter__`; `.url` is the page.

    `settings` are rendered into the child's argv (`to_argv`), with `port` (a free one unless
    given) and a certificate made in `cert_dir` (self-signed, as on first run) passed as
    `--cert/--key`; the server's log is `cert_dir/site.log`. `extra_args` go to the command
    line as given. `.printed` is the line the server printed for its user (the URL).
    """

    def __init__(
        self,
        cert_dir: Path,
        settings: SiteSettings | None = None,
        *,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 20.0,
    ) -> None:
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}/"
        self.cert = cert_dir / CERT_NAME
        self.key = cert_dir / KEY_NAME
        self.log_path = cert_dir / "site.log"
        self.settings = (settings or SiteSettings()).model_copy(
            update={"port": self.port, "cert": self.cert, "key": self.key}
        )
        self._args = [*to_argv(self.settings), *extra_args]
        self._start_timeout = start_timeout
        self.printed = ""  # the line the server printed for its user
        super().__init__()

    def start(self) -> SiteServer:
        """Start the subprocess and poll `/config.json` until it answers."""
        ensure_certificate(self.cert, self.key)
        # The log goes to a file, not a pipe nobody drains (a full pipe would stall the server).
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "farm.webdemo", *self._args],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        deadline = time.monotonic() + self._start_timeout
        context = ssl.create_default_context(cafile=str(self.cert))
        while True:
            if self._proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")
                raise RuntimeError(f"demo site exited with {self._proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"{self.url}config.json", context=context, timeout=2):
                    pass
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"demo site not ready at {self.url}") from None
                time.sleep(0.05)
                continue
            # The URL line is printed before the server starts, so it is there to read now.
            if self._proc.stdout is not None:
                self.printed = self._proc.stdout.readline().decode().strip()
            return self
