"""Running a benchmark: one locust run (in subprocesses) per target × stream count, then a report.

Locust runs headless (or with `--web`) as `python -m locust` subprocesses, so its gevent world
never meets this asyncio-free CLI process; with `--workers K` it is locust's own distributed
mode, one master and K worker processes, each writing its own rows. A progress callback gets a
`Progress` every second from the workers' health files.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, targets
from bench.child_settings import WorkerSettings
from bench.errors import RunError
from bench.machine import machine_facts
from bench.prompts import prompt_set_hash, resolve_prompts
from bench.record import SCHEMA_VERSION
from bench.runtime import RunSpec
from bench.settings import BenchSettings
from farm.common.net import free_port
from farm.settings import child_env, specs, to_argv

log = logging.getLogger(__name__)
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# A run that overshoots its planned length by this much is stopped (locust hung or slow start).
_GRACE_S = 60.0
_RATE_WINDOW = 6


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress sample of the current run."""

    target: str
    streams: int
    elapsed_s: float
    done: int
    errors: int
    in_flight: int
    tok_per_s: float
    cpu_pct_max: float


ProgressFn = Callable[[Progress], None]


def default_out(config: BenchSettings, now: datetime | None = None) -> Path:
    """`results/<UTC timestamp>-<target>-<streams>` (sweeps name the range)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = "all" if len(config.target) > 1 else config.target[0]
    streams = "-".join(str(s) for s in config.stream_counts)
    return Path("results") / f"{stamp}-{target}-{streams}"


def _locust_argv(user_class: str, locust: list[str], options: WorkerSettings) -> list[str]:
    """A locust process: locust's own flags, then the bench's (`WorkerSettings`)."""
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING",
        *locust, *to_argv(options), user_class,
    ]  # fmt: skip


def child_environ(base: Mapping[str, str], config: BenchSettings) -> dict[str, str]:
    """A locust process's environment: `base` without the bench's own variables (its settings
    arrive whole in the run spec), plus the secrets that the spec leaves out (`child_env`)."""
    own = {key for spec in specs(BenchSettings) for key in spec.env}
    return {**{k: v for k, v in base.items() if k not in own}, **child_env(config)}


def _commands(spec: RunSpec, spec_path: Path, run_dir: Path) -> list[list[str]]:
    """The process command lines of one run: [local] or [master, worker 0, …, worker K-1]."""
    cfg = spec.config
    user_class = "NknStream" if spec.target == "nkn" else "HttpStream"
    users = ["-u", str(spec.streams), "-r", str(spec.streams)]
    duration_s = cfg.duration_s
    timing = ["-t", f"{math.ceil(duration_s)}s"] if duration_s is not None else []
    ui = ["--web-host", "127.0.0.1", "--autostart"] if cfg.web else ["--headless"]
    csv = ["--csv", str(run_dir / "locust")]
    if cfg.workers == 0:
        local = WorkerSettings(bench_spec=spec_path, bench_quota=cfg.requests or 0)
        return [_locust_argv(user_class, [*ui, *users, *timing, *csv], local)]
    port = free_port()
    master = [
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--expect-workers", str(cfg.workers), *ui, *users, *timing, *csv,
    ]  # fmt: skip
    cmds = [_locust_argv(user_class, master, WorkerSettings(bench_spec=spec_path))]
    for k in range(cfg.workers):
        share = (
            cfg.requests // cfg.workers + (k < cfg.requests % cfg.workers) if cfg.requests else 0
        )
        worker = WorkerSettings(
            bench_spec=spec_path,
            bench_worker=k,
            bench_quota=share,
            bench_rate_share=1.0 / cfg.workers,
        )
        locust = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        cmds.append(_locust_argv(user_class, locust, worker))
    return cmds


def _rate(history: collections.deque[tuple[float, int]], now: float, tokens: int) -> float:
    """Tokens per second over the samples in `history` (then records this one)."""
    history.append((now, tokens))
    first_t, first_tokens = history[0]
    return (tokens - first_tokens) / (now - first_t) if now > first_t else 0.0


def read_health(run_dir: Path) -> list[dict[str, Any]]:
    """The latest health sample of each worker in `run_dir`."""
    latest = []
    for path in sorted(run_dir.glob("health-*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines:
            latest.append(json.loads(lines[-1]))
    return latest


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Ask locust to stop (SIGTERM: it stops users, writing in-flight ones as incomplete)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_locust(
    spec: RunSpec,
    run_dir: Path,
    environ: Mapping[str, str],
    on_progress: ProgressFn | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Run locust for one target × stream count until its duration or request quota is spent,
    or until `stop()` (asked once a second) says the run has shown enough; `environ` is the
    base of the locust processes' environment."""
    cfg = spec.config
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.json"
    spec_path.write_text(spec.to_json(), encoding="utf-8")
    log_file = (run_dir / "locust.log").open("wb")
    env = child_environ(environ, cfg)
    procs = [
        subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        for cmd in _commands(spec, spec_path, run_dir)
    ]
    started = time.monotonic()
    planned = cfg.duration_s if cfg.duration_s is not None else 3600.0
    # Tokens are counted when a request ends, so the rate is smoothed over a few seconds.
    history: collections.deque[tuple[float, int]] = collections.deque(maxlen=_RATE_WINDOW)
    try:
        while procs[0].poll() is None:
            time.sleep(1.0)
            now = time.monotonic()
            health = read_health(run_dir)
            done = sum(int(h["done"]) for h in health)
            tokens = sum(int(h["tokens"]) for h in health)
            if on_progress is not None:
                on_progress(
                    Progress(
                        target=spec.target,
                        streams=spec.streams,
                        elapsed_s=now - started,
                        done=done,
                        errors=sum(int(h["errors"]) for h in health),
                        in_flight=sum(int(h["in_flight"]) for h in health),
                        tok_per_s=_rate(history, now, tokens),
                        cpu_pct_max=max((float(h["cpu_pct"]) for h in health), default=0.0),
                    )
                )
            if cfg.requests is not None and done >= cfg.requests:
                break
            if stop is not None and stop():
                break
            if not cfg.web and now - started > planned + _GRACE_S:
                log.warning(
                    "run %s×%d overran by %.0fs; stopping it", spec.target, spec.streams, _GRACE_S
                )
                break
    finally:
        _stop(procs)
        log_file.close()
    if not any(p.stat().st_size for p in run_dir.glob("rows-*.jsonl")):
        tail = (run_dir / "locust.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RunError(
            f"locust wrote no rows for {spec.target}×{spec.streams}; its log ends:\n{tail}"
        )


def write_meta(
    config: BenchSettings, out: Path, resolved: tuple[targets.Target, ...]
) -> dict[str, Any]:
    """meta.json: full config, prompt-set hash, server facts, machine, schema version."""
    prompts = resolve_prompts(config.prompts, config.prompt_count, config.seed)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "created_unix_s": time.time(),
        "command": list(sys.orig_argv),
        "config": config.record(),
        "prompt_set_hash": prompt_set_hash(prompts),
        "prompt_count": len(prompts),
        "targets": [
            {
                "name": t.name,
                "url": t.url,
                "model": t.model,
                **(targets.server_facts(t.url, config) if t.url else {}),
            }
            for t in resolved
        ],
        "machine": machine_facts(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return meta


def run_bench(
    config: BenchSettings,
    *,
    environ: Mapping[str, str],
    on_progress: ProgressFn | None = None,
) -> report.Report:
    """Run every target × stream count of `config`; write and return the report.

    `environ` is the environment the locust processes start from (the entry point's snapshot).
    """
    out = config.out or default_out(config)
    resolved = targets.resolve_targets(config)
    write_meta(config, out, resolved)
    for target in resolved:
        if target.url is not None:
            targets.warm_model(target.url, target.model, config)
    run_id = out.name
    try:
        for target in resolved:
            for streams in config.stream_counts:
                spec = RunSpec(
                    run_id=run_id,
                    target=target.name,
                    url=target.url,
                    model=target.model,
                    streams=streams,
                    out_dir=str(out / "runs" / f"{target.name}-s{streams}"),
                    config=config.model_copy(update={"out": out}),
                )
                run_locust(spec, Path(spec.out_dir), environ, on_progress)
    except BaseException:
        # A report is written even after Ctrl-C or a failed run: the rows so far are results.
        if any(out.glob("runs/*/rows-*.jsonl")):
            report.write_report(out)
        raise
    return report.write_report(out)
