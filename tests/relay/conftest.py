"""Fixtures for the relay engine tests (helpers live in tests/relay/harness.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
