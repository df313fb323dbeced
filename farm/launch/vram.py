"""GPU memory around the model load: will it fit (after the pull, before any warm-up) and did
it spill onto the CPU (after each warm-up). `invoke up` calls the two functions below.

Each backend's budget is the free memory of the GPUs it gets: from NVML for a backend on this
host (`ollama serve` or a container on a local engine; its pinned GPU, or all of them), else
from the GPUs Ollama itself logged at start (a remote engine, the simulator with
`--vram-mib`). Backends on the same GPUs are checked together: N of them need N times the
memory. A backend with no known GPU, `--cpu`, or a model whose metadata lacks its layers is
not checked (said in one info line). `--force` turns a refusal into a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from farm.common.sizes import binary
from farm.gpu.errors import NvmlUnavailable
from farm.gpu.inventory import Inventory, read_inventory
from farm.launch.backend import Backend
from farm.launch.errors import DoesNotFit
from farm.launch.fit import (
    GpuBudget,
    budget_from_log,
    budget_of,
    budget_of_uuid,
    estimate,
    fit_problem,
)
from farm.launch.placement import Placement, is_remote
from farm.launch.settings import UpSettings
from farm.launch.shape import read_shape
from farm.launch.spill import spill_warnings

log = logging.getLogger(__name__)

# Where Ollama's `inference compute` lines sit: near the start of a log that may be long.
LOG_LINES = 400
LOCAL_KINDS = ("process", "container")


def _local_inventory() -> Inventory | None:
    try:
        return read_inventory()
    except NvmlUnavailable as exc:
        log.info("no local GPU inventory (%s)", exc)
        return None


def _budget(
    backend: Backend, placement: Placement | None, local: Inventory | None
) -> tuple[str, GpuBudget] | None:
    """(key, budget) for one backend; backends with equal keys share their GPUs."""
    on_this_host = placement is None or not is_remote(placement.docker_host)
    if backend.record().kind in LOCAL_KINDS and on_this_host and local and local.gpus:
        pinned = placement.gpu if placement is not None else None
        if pinned is None:
            return "local:all", budget_of(local.gpus)
        budget = budget_of_uuid(local.gpus, pinned.uuid)
        if budget is not None:
            return f"local:{pinned.uuid}", budget
    found = budget_from_log(backend.log_tail(LOG_LINES))
    if found is None:
        return None
    host = placement.docker_host if placement is not None else None
    pinned_uuid = placement.gpu.uuid if placement is not None and placement.gpu else "all"
    # Each simulator or external server is its own machine; containers of one remote engine
    # share that engine's GPUs.
    key = f"{host}:{pinned_uuid}" if host and is_remote(host) else backend.url
    return key, found


def check_before_load(
    config: UpSettings,
    backends: Sequence[Backend],
    placements: Sequence[Placement] = (),
) -> None:
    """Refuse (DoesNotFit) a farm whose backends cannot hold the model in GPU memory.

    Call after the pull (the model's metadata must be there) and before any warm-up (nothing
    loaded yet). `placements[i]` is `backends[i]`'s placement, where there is one."""
    if config.cpu or not backends:
        return
    shape = read_shape(backends[0].url, config.model)
    if shape is None:
        return
    need = estimate(shape, config.num_parallel, config.ctx)
    local = _local_inventory() if any(b.record().kind in LOCAL_KINDS for b in backends) else None
    groups: dict[str, tuple[GpuBudget, int]] = {}
    for i, backend in enumerate(backends):
        found = _budget(backend, placements[i] if i < len(placements) else None, local)
        if found is None:
            log.info("%s: no GPU memory figure; fit check skipped for it", backend.url)
            continue
        key, budget = found
        groups[key] = (budget, groups[key][1] + 1 if key in groups else 1)
    for budget, sharing in groups.values():
        problem = fit_problem(shape, need, budget, sharing)
        if problem is None:
            log.info(
                "%s needs about %s per backend: fits %s (%s free)",
                config.model,
                need.describe(),
                budget.label,
                binary(budget.free_bytes),
            )
        elif config.force:
            log.warning("%s; starting anyway (--force)", problem)
        else:
            raise DoesNotFit(f"{problem}; --force starts anyway")


def warn_after_load(config: UpSettings, backend: Backend) -> list[str]:
    """Log (and return) one warning per model that the backend runs partly on the CPU."""
    if config.cpu or config.mode == "engine":
        return []  # the CPU is what was asked for
    lines = spill_warnings(backend.url)
    if config.gpu_layers >= 0:
        # Fewer layers asked for than the model has put the rest on the CPU on purpose.
        lines = [f"{line}, or raise --gpu-layers {config.gpu_layers}" for line in lines]
    for line in lines:
        log.warning("%s: %s", backend.url, line)
    return lines
