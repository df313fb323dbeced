"""`up` and `down`: start backends, pull, warm up, front them with the proxy; stop it all.

Startup is all-or-nothing: any failure (or Ctrl-C/SIGTERM) part-way stops whatever was already
started, in reverse order. In the foreground the launcher then supervises: if a backend or the
proxy dies, or a signal arrives, everything is stopped and the state file removed. With
`--detach` the children (own sessions) keep running and the state file lets `down` find them.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from farm.launch import children, container, engines, state, vram
from farm.launch.backend import Backend, inference_compute, wait_ready
from farm.launch.children import Child, inherited_env
from farm.launch.errors import BackendError, FarmError, ProxyError
from farm.launch.external import ExternalBackend
from farm.launch.model_pull import pull_model
from farm.launch.plan import Plan, preflight
from farm.launch.process import local_backend, sim_backend
from farm.launch.proxy_process import probe_url, spawn_proxy, wait_proxy
from farm.launch.settings import UpSettings
from farm.launch.warmup import warm_up
from farm.sim.engines.llamacpp.engine import LABEL as ENGINE_LABEL

log = logging.getLogger(__name__)


def build_backends(
    config: UpSettings, plan: Plan, base_env: Mapping[str, str], log_dir: Path
) -> list[Backend]:
    """One backend per placement (or per --backend-url), not yet started."""
    if plan.mode == "external":
        return [ExternalBackend(u, f"external-{i}") for i, u in enumerate(config.backend_url, 1)]
    out: list[Backend] = []
    for p in plan.placements:
        if plan.mode == "docker":
            out.append(container.ContainerBackend(config, p, plan.models))
        elif plan.mode == "local" and plan.models is not None:
            uuid = p.gpu.uuid if p.gpu is not None else None
            out.append(local_backend(config, base_env, p.index, p.port, plan.models, log_dir, uuid))
        else:
            out.append(sim_backend(config, base_env, p.index, p.port, log_dir))
    return out


def _store_keys(plan: Plan) -> list[str]:
    """Backends with equal keys share a models store, so the model is pulled once per key.
    Each simulator keeps its own store; external backends are each their own."""
    if plan.mode in ("docker", "local"):
        return [p.store_key for p in plan.placements]
    return [str(i) for i in range(max(len(plan.placements), 1))]


def _announce(config: UpSettings, plan: Plan) -> None:
    if plan.mode == "sim":
        log.warning("mode sim: the backend is the Ollama SIMULATOR (synthetic, no model)")
    if plan.mode == "engine":
        log.warning("mode engine: the backend is the simulator's engine: %s", ENGINE_LABEL)
    if config.replicas > 1:
        log.warning(
            "--replicas %d: each replica loads its own copy of the weights (%dx the memory)",
            config.replicas,
            config.replicas,
        )
    log.info(
        "gpu layers %d (num_gpu): Ollama has no OLLAMA_NUM_GPU_LAYERS variable, so it takes "
        "effect through the warm-up request and the proxy's option pinning",
        config.pin_num_gpu,
    )
    if config.host in ("0.0.0.0", "::") and not config.api_key:
        log.warning("the proxy listens on %s without an API key (set FARM_API_KEY)", config.host)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the same clean path as Ctrl-C while the farm runs in this process."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _teardown(backends: list[Backend], proxy: Child | None) -> None:
    """Stop the proxy, then the backends in reverse order; report but survive failures.

    A second Ctrl-C (or SIGTERM) while stopping is ignored, so a half-finished teardown cannot
    leave children behind; each stop is bounded by SIGKILL after a grace period anyway."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if proxy is not None:
            proxy.stop()
        for backend in reversed(backends):
            try:
                backend.stop()
            except (FarmError, OSError) as exc:
                log.warning("stopping %s failed: %s", backend.url, exc)
    finally:
        for sig, handler in previous.items():
            # None means "installed outside Python": the default action is the closest match.
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _log_hint(backend: Backend) -> Callable[[], str]:
    """For readiness errors: the backend's last log lines, read only when needed."""

    def hint() -> str:
        text = backend.log_tail(10)
        return f"last log lines:\n{text}" if text else ""

    return hint


def _report_compute(config: UpSettings, backend: Backend) -> None:
    """Say which devices Ollama found; warn when a GPU was wanted but it fell back to the CPU."""
    devices = inference_compute(backend.log_tail(400))
    for device in devices:
        log.info("%s: inference compute %s", backend.url, device)
    if devices and not config.cpu and all("library=cpu" in d for d in devices):
        log.warning(
            "%s: Ollama found no GPU and runs on the CPU; check `invoke gpu-setup --check`",
            backend.url,
        )


def _bring_up(
    config: UpSettings, backends: list[Backend], store_keys: list[str], plan: Plan
) -> None:
    """Wait for each started backend, then pull (unless --no-pull) once per models store,
    check that the model fits the GPUs (`vram`), and warm the model on every backend."""
    for backend in backends:
        wait_ready(backend.url, config.ready_timeout_s, backend.alive, _log_hint(backend))
        log.info("backend ready at %s", backend.url)
    pulled: set[str] = set()
    for i, backend in enumerate(backends):
        key = store_keys[i] if i < len(store_keys) else backend.url
        if config.pull and key not in pulled:
            pull_model(backend.url, config.model)
            pulled.add(key)
    # The model's metadata exists only once pulled; nothing is loaded yet, so a refusal costs
    # no load time.
    vram.check_before_load(config, backends, plan.placements)
    for backend in backends:
        _report_compute(config, backend)
        result = warm_up(
            backend.url, config.model, config.keepalive, config.ctx, config.pin_num_gpu
        )
        log.info(
            "warm-up %s on %s: load_duration %.3f s (keep_alive %s, num_ctx %d, num_gpu %d)",
            config.model,
            backend.url,
            result.load_duration_ns / 1e9,
            config.keepalive,
            config.ctx,
            config.pin_num_gpu,
        )
        vram.warn_after_load(config, backend)


def _record(
    config: UpSettings, plan: Plan, backends: list[Backend], proxy: Child
) -> state.FarmState:
    me = children.find(os.getpid(), None)
    records = [b.record() for b in backends]
    # What each backend holds comes from its placement, whatever kind of backend it is.
    for i, p in enumerate(plan.placements[: len(records)]):
        records[i] = dataclasses.replace(records[i], gpu=p.gpu_label)
    return state.FarmState(
        mode=plan.mode,
        model=config.model,
        num_parallel=config.num_parallel,
        front_url=probe_url(config.host, config.front_port),
        backends=tuple(records),
        launcher_pid=os.getpid(),
        launcher_create_time=me.create_time() if me else None,
        detach=config.detach,
        proxy_pid=proxy.pid,
        proxy_create_time=proxy.create_time(),
        proxy_log=str(proxy.log_path),
        started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        config=config.model_dump(mode="json", exclude={"api_key"}),
    )


def _supervise(backends: list[Backend], proxy: Child) -> None:
    """Block until Ctrl-C/SIGTERM (clean return), the proxy dies or every backend has died
    (BackendError). While one backend lives the farm serves: the proxy routes around the dead."""
    tick = threading.Event()
    dead: set[str] = set()
    try:
        while True:
            for backend in backends:
                if backend.url not in dead and not backend.alive():
                    dead.add(backend.url)
                    log.warning("backend %s exited; the proxy routes around it", backend.url)
            if len(dead) == len(backends):
                what = f"backend {backends[0].url}" if len(backends) == 1 else "every backend"
                raise BackendError(f"{what} exited; stopping the farm")
            if not proxy.alive():
                raise ProxyError("the proxy exited; stopping the farm")
            tick.wait(0.5)
    except KeyboardInterrupt:
        log.info("shutting down")


def up(config: UpSettings, cwd: Path, environ: Mapping[str, str]) -> state.FarmState:
    """Start the farm; returns once detached, or after a clean foreground shutdown.

    `environ` is the launcher's environment (PATH, HOME, ...): its children inherit it, less the
    OLLAMA_* variables that the farm sets itself."""
    base_env = inherited_env(environ)
    plan = preflight(config, base_env, cwd)
    _announce(config, plan)
    log_dir = config.state_dir / "logs"
    started: list[Backend] = []
    proxy: Child | None = None
    detached = False
    with _sigterm_as_interrupt():
        # One try block from the first start to the end of supervision: a signal landing between
        # any two steps (even just after the state file is written) still tears everything down.
        try:
            backends = build_backends(config, plan, base_env, log_dir)
            started.extend(backends)  # stop() is safe on a backend that never started
            for backend in backends:
                if isinstance(backend, container.ContainerBackend):
                    backend.create()  # every container's spec reaches its engine before a start
            for backend in backends:
                backend.start()
            labels = {p.url: p.label for p in plan.placements}
            proxy = spawn_proxy(config, [b.url for b in backends], base_env, log_dir, labels)
            _bring_up(config, backends, _store_keys(plan), plan)
            wait_proxy(config, proxy)
            record = _record(config, plan, backends, proxy)
            state.save(config.state_dir, record)
            log.info(
                "farm ready: %s (model %s, %d slots)",
                record.front_url,
                config.model,
                config.num_parallel,
            )
            if config.detach:
                detached = True
                return record
            _supervise(backends, proxy)
        finally:
            if not detached:
                _teardown(started, proxy)
                state.remove(config.state_dir)
    return record


def down(state_dir: Path) -> list[str]:
    """Stop everything the recorded farm started; returns what was stopped."""
    record = state.load(state_dir)
    if record is None:
        return []
    stopped: list[str] = []
    failed: list[str] = []
    # A foreground launcher shuts its own children down on SIGTERM; anything left is ours.
    if record.launcher_pid != os.getpid() and children.stop_recorded(
        record.launcher_pid, record.launcher_create_time, group=False
    ):
        stopped.append(f"launcher (pid {record.launcher_pid})")
    if children.stop_recorded(record.proxy_pid, record.proxy_create_time):
        stopped.append(f"proxy (pid {record.proxy_pid})")
    for b in reversed(record.backends):
        if b.kind in ("process", "sim", "engine") and children.stop_recorded(
            b.pid, b.pid_create_time
        ):
            stopped.append(f"{b.kind} backend {b.url} (pid {b.pid})")
        elif b.kind == "container" and b.container_id:
            # One unreachable engine must not keep the others' containers running.
            try:
                client = engines.connect(b.docker_host)
                if engines.stop_container(client, b.container_id):
                    stopped.append(f"container {b.name} ({b.container_id[:12]})")
            except FarmError as exc:
                failed.append(f"container {b.name}: {exc}")
    if failed:
        raise BackendError(
            f"could not stop {'; '.join(failed)} (state kept: run `invoke down` again)"
        )
    state.remove(state_dir)
    return stopped
