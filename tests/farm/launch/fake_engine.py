"""A fake Docker Engine API on a unix socket: only the endpoints the docker SDK calls for the
farm (ping, version, images inspect/create, containers create/start/inspect/logs/stop/delete).

`start` runs the Ollama simulator on the published host port, with the container's OLLAMA_*
environment, so the launcher's readiness wait, pull, warm-up and proxy see a live backend.
Failure switches reproduce the engine's real error responses: image pull failure, the NVIDIA
"could not select device driver" error, a name conflict, a port already allocated. Every
create body is kept so tests can assert the container spec the SDK sent.
"""

from __future__ import annotations

import json
import re
import shutil
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

GPU_ERROR = 'could not select device driver "" with capabilities: [[gpu]]'


@dataclass
class FakeContainer:
    """A container the fake engine knows: its create body and its simulator process."""

    id: str
    name: str
    body: dict[str, Any]
    status: str = "created"
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def refresh(self) -> None:
        if self.status == "running" and self.proc is not None and self.proc.poll() is not None:
            self.status = "exited"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.status == "running":
            self.status = "exited"


@dataclass
class EngineState:
    """What the fake holds and how it should fail."""

    workdir: Path
    images: set[str] = field(default_factory=set)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_pull: str | None = None
    gpu_missing: bool = False
    allocated_ports: set[int] = field(default_factory=set)
    undeletable: set[str] = field(default_factory=set)
    # Names another client grabs between our removal and our create (a race we must report).
    taken_names: set[str] = field(default_factory=set)
    created: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, ref: str) -> FakeContainer | None:
        for c in self.containers.values():
            if ref in (c.id, c.name) or (len(ref) >= 12 and c.id.startswith(ref)):
                return c
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet; the calls are recorded in EngineState.calls."""

    def address_string(self) -> str:
        return "unix"

    # -- plumbing -------------------------------------------------------------------------
    def _reply(self, status: int, body: object = None, ctype: str = "application/json") -> None:
        data = (
            b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"message": message})

    def _chunked(self, lines: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for obj in lines:
            data = (json.dumps(obj) + "\r\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = re.sub(r"^/v[0-9.]+", "", parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        state = self.server.state
        with state.lock:
            state.calls.append((method, path))
        handler = _dispatch(method, path)
        if handler is None:
            self._error(404, f"fake engine: no route {method} {path}")
            return
        name, arg = handler
        getattr(self, name)(arg, query, json.loads(raw) if raw else None)

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        self._route("HEAD")

    # -- endpoints ------------------------------------------------------------------------
    def ping(self, _: str, q: dict[str, str], b: Any) -> None:
        self._reply(200, b"OK", "text/plain")

    def version(self, _: str, q: dict[str, str], b: Any) -> None:
        self._reply(
            200,
            {"ApiVersion": "1.45", "MinAPIVersion": "1.24", "Version": "27.3.1", "Os": "linux"},
        )

    def image_inspect(self, name: str, q: dict[str, str], b: Any) -> None:
        if name in self.server.state.images:
            self._reply(200, {"Id": "sha256:" + "0" * 64, "RepoTags": [name]})
        else:
            self._error(404, f"No such image: {name}")

    def image_create(self, _: str, q: dict[str, str], b: Any) -> None:
        state = self.server.state
        image = f"{q.get('fromImage')}:{q.get('tag') or 'latest'}"
        if state.fail_pull:
            self._chunked(
                [
                    {"status": f"Pulling from {q.get('fromImage')}", "id": q.get("tag")},
                    {"errorDetail": {"message": state.fail_pull}, "error": state.fail_pull},
                ]
            )
            return
        total = 3_000_000
        steps = [
            {
                "status": "Downloading",
                "id": "a1b2c3",
                "progressDetail": {"current": c, "total": total},
            }
            for c in (0, total // 2, total)
        ]
        state.images.add(image)
        self._chunked([*steps, {"status": f"Status: Downloaded newer image for {image}"}])

    def container_create(self, _: str, q: dict[str, str], body: dict[str, Any]) -> None:
        state = self.server.state
        name = q.get("name") or f"fake_{uuid.uuid4().hex[:6]}"
        with state.lock:
            existing = state.find(name)
            if name in state.taken_names and existing is None:
                existing = FakeContainer("f" * 64, name, {})
            if existing is not None:
                self._error(
                    409,
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{existing.id}". You have to remove (or rename) that container to be able '
                    "to reuse that name.",
                )
                return
            cid = uuid.uuid4().hex + uuid.uuid4().hex
            state.created.append({"name": name, **body})
            state.containers[cid] = FakeContainer(cid, name, body)
        self._reply(201, {"Id": cid, "Warnings": []})

    def _container(self, ref: str) -> FakeContainer | None:
        c = self.server.state.find(ref)
        if c is None:
            self._error(404, f"No such container: {ref}")
        return c

    def container_start(self, ref: str, q: dict[str, str], b: Any) -> None:
        c = self._container(ref)
        if c is None:
            return
        state = self.server.state
        host_config = c.body.get("HostConfig", {})
        if state.gpu_missing and host_config.get("DeviceRequests"):
            self._error(500, GPU_ERROR)
            return
        binding = host_config["PortBindings"]["11434/tcp"][0]
        port = int(binding["HostPort"])
        if port in state.allocated_ports:
            self._error(
                500,
                f"driver failed programming external connectivity on endpoint {c.name} "
                f"({c.id[:12]}): Bind for {binding['HostIp']}:{port} failed: port is already "
                "allocated",
            )
            return
        env = dict(e.split("=", 1) for e in c.body.get("Env") or [])
        # Inside the container Ollama listens on 0.0.0.0:11434; here the simulator plays it on
        # the published host address instead.
        env["OLLAMA_HOST"] = f"{binding['HostIp'] or '127.0.0.1'}:{port}"
        c.log_path = state.workdir / f"{c.id[:12]}.log"
        with open(c.log_path, "ab") as out:
            c.proc = subprocess.Popen(
                [sys.executable, "-m", "farm.sim"],
                env={**self.server.base_env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        c.status = "running"
        self._reply(204)

    def container_inspect(self, ref: str, q: dict[str, str], b: Any) -> None:
        c = self._container(ref)
        if c is None:
            return
        c.refresh()
        bindings = c.body.get("HostConfig", {}).get("PortBindings", {})
        self._reply(
            200,
            {
                "Id": c.id,
                "Name": f"/{c.name}",
                "Image": c.body.get("Image"),
                "State": {"Status": c.status, "Running": c.status == "running"},
                "Config": {
                    "Tty": False,
                    "Env": c.body.get("Env"),
                    "Image": c.body.get("Image"),
                    "Labels": c.body.get("Labels") or {},
                },
                "HostConfig": c.body.get("HostConfig", {}),
                "NetworkSettings": {"Ports": bindings if c.status == "running" else {}},
            },
        )

    def container_logs(self, ref: str, q: dict[str, str], b: Any) -> None:
        c = self._container(ref)
        if c is None:
            return
        text = c.log_path.read_bytes() if c.log_path and c.log_path.exists() else b""
        frames = b"".join(
            struct.pack(">BxxxL", 2, len(line)) + line for line in text.splitlines(keepends=True)
        )
        self._reply(200, frames, "application/vnd.docker.raw-stream")

    def container_stop(self, ref: str, q: dict[str, str], b: Any) -> None:
        c = self._container(ref)
        if c is None:
            return
        c.kill()
        self._reply(204)

    def container_delete(self, ref: str, q: dict[str, str], b: Any) -> None:
        c = self._container(ref)
        if c is None:
            return
        state = self.server.state
        if c.name in state.undeletable:
            self._error(409, f"removal of container {c.name} is already in progress")
            return
        if c.status == "running" and q.get("force") not in ("True", "true", "1"):
            self._error(409, f"cannot remove container {ref}: container is running")
            return
        c.kill()
        with state.lock:
            state.containers.pop(c.id, None)
        self._reply(204)


_ROUTES = [
    ("GET", r"/_ping", "ping"),
    ("HEAD", r"/_ping", "ping"),
    ("GET", r"/version", "version"),
    ("GET", r"/images/(.+)/json", "image_inspect"),
    ("POST", r"/images/create", "image_create"),
    ("POST", r"/containers/create", "container_create"),
    ("POST", r"/containers/([^/]+)/start", "container_start"),
    ("GET", r"/containers/([^/]+)/json", "container_inspect"),
    ("GET", r"/containers/([^/]+)/logs", "container_logs"),
    ("POST", r"/containers/([^/]+)/stop", "container_stop"),
    ("DELETE", r"/containers/([^/]+)", "container_delete"),
]


def _dispatch(method: str, path: str) -> tuple[str, str] | None:
    for m, pattern, name in _ROUTES:
        match = re.fullmatch(pattern, path)
        if m == method and match:
            return name, unquote(match.group(1)) if match.groups() else ""
    return None


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, state: EngineState, base_env: dict[str, str]) -> None:
        self.state = state
        self.base_env = base_env
        super().__init__(path, _Handler)


class FakeEngine:
    """Context manager: serve the fake engine on `<workdir>/docker.sock` in a thread."""

    def __init__(self, workdir: Path, base_env: dict[str, str]) -> None:
        self.state = EngineState(workdir=workdir)
        # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
        self._sockdir = Path(tempfile.mkdtemp(prefix="fake-engine-"))
        self.socket_path = self._sockdir / "docker.sock"
        self._server = _Server(str(self.socket_path), self.state, base_env)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """DOCKER_HOST value for this engine."""
        return f"unix://{self.socket_path}"

    def add_container(self, name: str, labels: dict[str, str] | None = None) -> FakeContainer:
        """Pretend a container called `name` already exists (state `created`), by default one
        a farm started earlier (it carries the farm's label)."""
        cid = uuid.uuid4().hex * 2
        body = {"Image": "old", "Labels": {"ollama-farm": name} if labels is None else labels}
        c = self.state.containers[cid] = FakeContainer(cid, name, body)
        return c

    def __enter__(self) -> FakeEngine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for c in list(self.state.containers.values()):
            c.kill()
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._sockdir, ignore_errors=True)
