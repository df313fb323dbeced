"""The site's TLS certificate: a self-signed one for localhost/127.0.0.1, made once and kept."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from farm.webdemo.errors import CertificateError

log = logging.getLogger(__name__)

VALID_DAYS = 825  # the longest lifetime browsers accept for a TLS server certificate
SAN_NAMES = ("localhost",)
SAN_IPS = ("127.0.0.1", "::1")


def ensure_certificate(cert: Path, key: Path) -> bool:
    """Make a self-signed certificate at `cert`/`key` unless both exist; True if one was made.

    The key is written with mode 0600 from the start (never world-readable, even briefly).
    """
    if cert.exists() and key.exists():
        return False
    if cert.exists() != key.exists():
        missing = key if cert.exists() else cert
        raise CertificateError(f"{missing} is missing; remove the other file to make a new pair")
    try:
        cert.parent.mkdir(parents=True, exist_ok=True)
        key.parent.mkdir(parents=True, exist_ok=True)
        private_key = ec.generate_private_key(ec.SECP256R1())
        _write_private(key, _key_pem(private_key))
        cert.write_bytes(_self_signed(private_key).public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise CertificateError(f"cannot write the site certificate: {exc}") from exc
    log.info("made a self-signed certificate for localhost/127.0.0.1 at %s", cert)
    return True


def check_readable(cert: Path, key: Path) -> None:
    """Fail early, with the path, when a user-supplied certificate or key cannot be read."""
    for path in (cert, key):
        if not path.is_file():
            raise CertificateError(f"{path} does not exist or is not a file")
        try:
            path.read_bytes()
        except OSError as exc:
            raise CertificateError(f"cannot read {path}: {exc}") from exc


def _key_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    # O_CREAT's mode is filtered by the umask and ignored for an existing file: set it exactly.
    os.chmod(path, 0o600)


def _self_signed(private_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ollama-farm demo (localhost)")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in SAN_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SAN_IPS]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )
