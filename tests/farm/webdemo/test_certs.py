"""The self-signed certificate: made once for localhost/127.0.0.1, key 0600, kept after."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from farm.webdemo.certs import check_readable, ensure_certificate
from farm.webdemo.errors import CertificateError


def test_first_run_makes_a_localhost_certificate_with_a_private_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "certs" / "c.pem", tmp_path / "certs" / "k.pem"
    assert ensure_certificate(cert, key) is True
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)


def test_later_runs_keep_the_existing_pair(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    ensure_certificate(cert, key)
    before = (cert.read_bytes(), key.read_bytes())
    assert ensure_certificate(cert, key) is False
    assert (cert.read_bytes(), key.read_bytes()) == before


def test_half_a_pair_is_an_error_not_silently_replaced(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("mine")
    with pytest.raises(CertificateError, match="k.pem is missing"):
        ensure_certificate(cert, key)
    assert cert.read_text() == "mine"


def test_missing_user_certificate_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="nope.pem does not exist"):
        check_readable(tmp_path / "nope.pem", tmp_path / "nope-key.pem")
