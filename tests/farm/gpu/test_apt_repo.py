"""NVIDIA apt repo files: dearmoring the key and pinning the list to our keyring."""

from __future__ import annotations

import pytest

from farm.gpu.apt_repo import KEYRING, dearmor, signed_list
from farm.gpu.daemon_json import restore_lost
from farm.gpu.errors import SetupError

from .conftest import KEY_BYTES, UPSTREAM_LIST, armored


def test_dearmor_recovers_the_binary_key() -> None:
    assert dearmor(armored(KEY_BYTES)) == KEY_BYTES


def test_dearmor_keeps_an_already_binary_key() -> None:
    assert dearmor(KEY_BYTES) == KEY_BYTES


@pytest.mark.parametrize(
    "payload",
    [b"<html>captive portal</html>", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!\n"],
    ids=["not-a-key", "bad-base64"],
)
def test_dearmor_rejects_what_is_not_a_key(payload: bytes) -> None:
    with pytest.raises(SetupError):
        dearmor(payload)


def test_signed_list_pins_only_deb_lines() -> None:
    out = signed_list(UPSTREAM_LIST).splitlines()
    assert out[0].startswith(f"deb [signed-by={KEYRING}] https://nvidia.github.io/")
    assert out[1].startswith("#deb https://")


def test_restore_lost_merges_dropped_features_and_keys() -> None:
    before = {"features": {"buildkit": True, "cdi": False}, "log-driver": "local"}
    after = {"features": {"cdi": True}, "runtimes": {}}
    assert sorted(restore_lost(before, after)) == ["features.buildkit", "log-driver"]
    assert after["features"] == {"cdi": True, "buildkit": True}
