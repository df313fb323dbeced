"""Resource use of a server's process tree: memory and CPU time of a pid and its descendants.

granian runs a supervisor and a forked worker, nginx a master and a worker, uvicorn one
process: measuring the whole tree treats each alike. A forked child shares most of its pages
with its parent, so summing RSS would count them twice: the tree's memory is the root's RSS
plus each descendant's USS (the pages only it holds).
"""

from __future__ import annotations

import psutil


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` (RSS) and its descendants (USS), in MB (10^6 bytes)."""
    root, *children = _tree(pid)
    total = int(root.memory_info().rss)
    for p in children:
        try:
            total += int(p.memory_full_info().uss)
        except psutil.NoSuchProcess:
            continue
    return total / 1e6


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants so far."""
    total = 0.0
    for p in _tree(pid):
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total
