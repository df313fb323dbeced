"""Fixtures for the local NKN node tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relay.localnode.child import LocalNode


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def local_node() -> Iterator[LocalNode]:
    with LocalNode() as node:
        yield node
