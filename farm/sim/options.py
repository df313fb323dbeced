"""Request `options`: the runner options that force reloads and the sampling ones.

Unknown keys are ignored as Ollama does (it only logs them); a wrong type fails the request
with 500 `option "x" must be of type integer`. Integer options accept floats (truncated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farm.sim.errors import RunnerFailure
from farm.sim.runner import RunnerOptions

_INT = {
    "num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "draft_num_predict",
    "num_predict", "seed", "top_k", "num_keep", "repeat_last_n",
}  # fmt: skip
_FLOAT = {
    "temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
    "frequency_penalty",
}  # fmt: skip
_BOOL = {"use_mmap"}
_SAMPLING = (
    "num_predict", "stop", "temperature", "top_k", "top_p", "min_p", "repeat_penalty",
    "repeat_last_n", "presence_penalty", "frequency_penalty",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to pick tokens and when to stop; the defaults are Ollama's (its options table).

    The synthetic engine honours the length limit, the seed and the stop strings; the
    llama.cpp engine all of them.
    """

    num_predict: int = -1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


def _typed(key: str, value: Any) -> Any:
    if key in _INT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RunnerFailure(f'option "{key}" must be of type integer')
        return int(value)
    if key in _FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RunnerFailure(f'option "{key}" must be of type float32')
        return float(value)
    if key in _BOOL:
        if not isinstance(value, bool):
            raise RunnerFailure(f'option "{key}" must be of type boolean')
        return value
    if key == "stop":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RunnerFailure(f'option "{key}" must be of type array of strings')
        return tuple(value)
    return value


def parse_options(
    raw: dict[str, Any] | None, default_ctx: int, model_params: dict[str, Any] | None = None
) -> tuple[RunnerOptions, Sampling]:
    """Merge model defaults and request options into runner and sampling options."""
    merged: dict[str, Any] = {}
    for source in (model_params or {}, raw or {}):
        for key, value in source.items():
            if value is None:
                continue
            merged[key] = _typed(key, value)
    runner = RunnerOptions(
        num_ctx=merged.get("num_ctx", default_ctx),
        num_batch=merged.get("num_batch", 512),
        num_gpu=merged.get("num_gpu", -1),
        main_gpu=merged.get("main_gpu", 0),
        use_mmap=merged.get("use_mmap"),
        num_thread=merged.get("num_thread", 0),
        draft_num_predict=merged.get("draft_num_predict", 4),
    )
    seed = merged.get("seed")
    chosen = {key: merged[key] for key in _SAMPLING if key in merged}
    sampling = Sampling(seed=None if seed is None or seed < 0 else seed, **chosen)
    return runner, sampling
