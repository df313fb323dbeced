"""Suite-wide options: tests marked `integration` (real Ollama, GPU, Docker or NKN) run only
with `--integration`."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--integration",
        action="store_true",
        default=False,
        help="also run tests that need a real Ollama, GPU, Docker engine or the NKN network",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--integration"):
        return
    skip = pytest.mark.skip(reason="needs --integration (real Ollama/GPU/Docker/NKN)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
