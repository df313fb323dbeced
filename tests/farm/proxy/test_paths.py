"""Path normalisation: what is refused, what is rewritten, and what passes untouched."""

from __future__ import annotations

import pytest

from farm.proxy.errors import BadPathError
from farm.proxy.paths import normal_path, with_normal_path


@pytest.mark.parametrize(
    "raw",
    [
        b"/",
        b"/api/generate",
        b"/api/tags/",
        b"/v1/models/llama3.2:latest",
        b"/v1/models/.x",
        b"/api/a%20b",
        b"/a/.../b",
    ],
)
def test_normal_paths_pass_untouched(raw: bytes) -> None:
    assert normal_path(raw) is None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (b"/api//tags", b"/api/tags"),
        (b"//api/tags/", b"/api/tags/"),
        (b"/api/x%3Ay", b"/api/x:y"),
        (b"/api/%41", b"/api/A"),
        (b"/api/caf%c3%a9", b"/api/caf%C3%A9"),
    ],
)
def test_escapes_and_slash_runs_are_normalised(raw: bytes, normal: bytes) -> None:
    assert normal_path(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"/api/../x", "segments"),
        (b"/api/.", "segments"),
        (b"/api/%2e%2E/x", "percent-encoded"),
        (b"/api%2fx", "percent-encoded"),
        (b"/api/%5Cx", "percent-encoded"),
        (b"/api/%00", "percent-encoded"),
        (b"/api\\x", "backslash"),
        (b"/api/%ff", "UTF-8"),
        (b"/api/%0a", "control"),
        (b"*", "starting with /"),
    ],
)
def test_ambiguous_paths_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadPathError, match=reason):
        normal_path(raw)


def test_the_scope_gets_the_normal_path_for_routing_and_forwarding() -> None:
    scope = {"path": "/api//x:y", "raw_path": b"/api//x%3Ay", "query_string": b"a=1"}
    assert with_normal_path(scope) == {
        "path": "/api/x:y",
        "raw_path": b"/api/x:y",
        "query_string": b"a=1",
    }
    plain = {"path": "/api/tags", "raw_path": b"/api/tags"}
    assert with_normal_path(plain) is plain
