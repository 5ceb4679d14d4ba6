"""The local stack's own certificate authority and the server certificates it issues (FerretDB, Kafka).

Generated once per state dir with ``cryptography`` (X.509 as profiled by RFC 5280): an ECDSA P-256 CA,
valid ten years, and per server a leaf certificate for its host names and addresses (subjectAltName,
RFC 5280 §4.2.1.6), valid one year and renewed when it expires within 30 days or its names change.
Private keys are written 0600; the CA certificate is what clients trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .configs import write_private

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    certificate: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ensure_ca(directory: Path, common_name: str = "eucaim-node local CA") -> Issued:
    """``ca.pem`` and ``ca.key`` in ``directory``, created once (an existing CA is kept: clients trust it)."""
    issued = Issued(directory / "ca.pem", directory / "ca.key")
    if issued.certificate.is_file() and issued.key.is_file():
        return issued
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    write_private(issued.key, _key_pem(key), 0o600)
    write_private(issued.certificate, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return issued


def _subject_alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _still_good(path: Path, ca: x509.Certificate, hosts: tuple[str, ...]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.issuer != ca.subject or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san) == set(_subject_alt_names(hosts))


def server_files(directory: Path, name: str) -> Issued:
    """Where :func:`ensure_server_certificate` keeps the certificate and key of server ``name``."""
    return Issued(directory / f"{name}.pem", directory / f"{name}.key")


def ensure_server_certificate(directory: Path, name: str, hosts: tuple[str, ...], ca: Issued, *,
                              client_auth: bool = False) -> Issued:
    """``<name>.pem`` (leaf then CA) and ``<name>.key`` for a TLS server reachable at ``hosts``, signed by ``ca``;
    with ``client_auth`` also usable as a TLS client certificate (Kafka's broker on its mutual-TLS listeners)."""
    issued = server_files(directory, name)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
    if issued.key.is_file() and _still_good(issued.certificate, ca_cert, hosts):
        return issued
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"eucaim-node {name}")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  *([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    write_private(issued.key, _key_pem(key), 0o600)
    write_private(issued.certificate, cert.public_bytes(serialization.Encoding.PEM) + ca.certificate.read_bytes(), 0o644)
    return issued
