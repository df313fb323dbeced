"""Deterministic synthetic embeddings: the same model and text always give the same vector."""

from __future__ import annotations

import math
import random


def raw_vector(model: str, text: str, width: int) -> list[float]:
    """An un-normalised vector (the legacy `/api/embeddings` shape)."""
    rng = random.Random(f"{model}\x00{text}")
    return [rng.gauss(0.0, 1.0) for _ in range(width)]


def normalised(values: list[float]) -> list[float]:
    """L2-normalise (as `/api/embed` does)."""
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
