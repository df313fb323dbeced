"""Where a proxy server's time goes per request: py-spy samples under a steady stream load.

`profile_server` runs `py-spy record --format raw` (collapsed stacks, one line per distinct
stack with its sample count) on a server's process tree while rounds of concurrent streams go
through it, and `hot_frames` turns the stacks into each frame's share of the samples: `self`
where the frame was running, `total` where it was on the stack. The table scales shares to
the process tree's measured CPU time per request (`cpu_ms_per_request`, from the kernel),
because py-spy also counts a thread as active while it sits in a syscall, so raw sample
counts overstate CPU. py-spy sees Python frames only: C inside the event loop (uvloop,
httptools, the syscalls) is the loop frame's self time, and granian's Rust threads are
stacks with no Python frame (`NATIVE`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.process_tree import tree_cpu_s
from bench.proxy_streams import client_session, run_round

log = logging.getLogger(__name__)
RATE_HZ = 1000
# Frames of these modules get an inclusive row of their own: the proxy and the servers.
OWN_CODE = ("farm/", "bench/", "uvicorn/", "granian/")
NATIVE = "(a thread with no Python frame: the server's native threads)"


@dataclass(frozen=True, slots=True)
class HotFrame:
    """One function's share (0..1) of all samples: running itself, and on the stack."""

    frame: str
    self_share: float
    total_share: float


@dataclass(frozen=True, slots=True)
class Profile:
    """A profiled load: requests served, process-tree CPU time, and the sampled stacks."""

    label: str
    requests: int
    cpu_ms_per_request: float
    samples: int
    raw_path: Path
    frames: tuple[HotFrame, ...]


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def parse_collapsed(lines: Iterable[str]) -> Counter[tuple[str, ...]]:
    """py-spy's raw output (`frame;frame;... count`, root first) as stack -> samples."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def hot_frames(stacks: Counter[tuple[str, ...]], top: int = 20) -> tuple[HotFrame, ...]:
    """The hottest frames as shares of all samples: the `top` by self time, then the `top`
    of the proxy's and the servers' own frames (`OWN_CODE`) by total time not yet listed.

    Line numbers are dropped so one function is one row; a recursive function counts once per
    stack in `total`. Wrappers above the event loop (`run_main`, `main`, ...) are left out of
    the second list: they would only repeat the loop's total.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stack, count in stacks.items():
        # `--subprocesses` roots each stack in a "process PID:cmdline" frame; a stack of that
        # frame alone is a thread with no Python frame (a Rust or C server thread).
        names = [_function(f) for f in stack if not f.startswith("process ")] or [NATIVE]
        own[names[-1]] += count
        for name in set(names):
            total[name] += count
    per = 1.0 / max(sum(stacks.values()), 1)
    by_self = [name for name, n in own.most_common(top)]
    # The event loop's frame runs most; frames at least as heavy are the wrappers above it.
    loop_total = next((total[n] for n in by_self if n != NATIVE), 0)
    by_total = [
        name
        for name, n in total.most_common()
        if name not in by_self and n < loop_total and any(m in name for m in OWN_CODE)
    ][:top]
    return tuple(HotFrame(n, own[n] * per, total[n] * per) for n in [*by_self, *by_total])


def _function(frame: str) -> str:
    # "name (path/file.py:123)" -> "name (path/file.py)"
    head, sep, tail = frame.rpartition(":")
    return f"{head})" if sep and tail.rstrip(")").isdigit() else frame


def profile_server(
    label: str, pid: int, url: str, out_dir: Path, streams: int, rounds: int, tokens: int
) -> Profile | None:
    """Sample the server at `pid` (and its children) while `rounds` x `streams` streams run."""
    spy = py_spy()
    if spy is None:
        log.warning("py-spy not found (pip install py-spy): no profile of %s", label)
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{label}.collapsed.txt"
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    argv += ["--rate", str(RATE_HZ), "--format", "raw", "--output", str(raw)]
    spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        cpu0 = tree_cpu_s(pid)
        requests = asyncio.run(_load(url, label, streams, rounds, tokens))
        cpu_s = tree_cpu_s(pid) - cpu0
    finally:
        spy_proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        _, err = spy_proc.communicate(timeout=60)
    if not raw.exists():
        log.warning("py-spy wrote no profile of %s: %s", label, err.decode(errors="replace"))
        return None
    stacks = parse_collapsed(raw.read_text().splitlines())
    return Profile(
        label,
        requests,
        cpu_s * 1000 / max(requests, 1),
        sum(stacks.values()),
        raw,
        hot_frames(stacks),
    )


async def _load(url: str, label: str, streams: int, rounds: int, tokens: int) -> int:
    async with client_session() as http:
        # Round 0 opens the connections; it is counted, as its CPU time is.
        done = len(await run_round(http, url, label, streams, tokens, 0))
        for rnd in range(1, rounds + 1):
            done += len(await run_round(http, url, label, streams, tokens, rnd))
        return done


def profile_table(profile: Profile) -> list[str]:
    """The profile as text: CPU per request, then the hottest frames, each as its share of
    the samples times the measured CPU per request."""
    out = [
        f"profile {profile.label}: {profile.requests} requests, process CPU "
        f"{profile.cpu_ms_per_request:.2f} ms/request, {profile.samples} samples at "
        f"{RATE_HZ} Hz ({profile.raw_path})",
        f"  {'self ms/req':>11} {'total ms/req':>12}  frame",
    ]
    cpu = profile.cpu_ms_per_request
    out += [
        f"  {f.self_share * cpu:11.3f} {f.total_share * cpu:12.3f}  {f.frame}"
        for f in profile.frames
    ]
    return out
