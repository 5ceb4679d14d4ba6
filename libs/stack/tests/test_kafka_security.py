"""The stack's Kafka secrets and provisioning spec: pure generation, no servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
import ssl
from pathlib import Path

from cryptography import x509

from eucaim_node.events import KAFKA_GRANTS, NODE_TOPICS, SUPER_USER
from eucaim_node.stack import StackSettings
from eucaim_node.stack import kafka_security as ks


def _settings(tmp_path: Path) -> StackSettings:
    return StackSettings.test_profile(state_dir=tmp_path)


def test_secrets_are_private_and_one_password_per_principal(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    directory = ks.kafka_secrets_dir(s)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}
    passwords = {p: ks.read_password(s, p) for p in (SUPER_USER, *KAFKA_GRANTS)}
    assert len(set(passwords.values())) == len(passwords) and all(len(v) >= 40 for v in passwords.values())
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    ks.ensure_kafka_secrets(s)  # idempotent: nothing regenerated
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_the_broker_certificate_verifies_against_the_ca_for_the_stack_host(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    pem = ks.broker_keystore_file(s).read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM key store wants
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    ca = x509.load_pem_x509_certificate(ks.ca_cert_file(s).read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= ks.BROKER_CERT_LIFETIME + dt.timedelta(minutes=5)
    context = ssl.create_default_context(cafile=str(ks.ca_cert_file(s)))  # what clients load
    assert context.cert_store_stats()["x509_ca"] == 1


def test_a_broker_certificate_near_expiry_is_renewed_and_the_ca_kept(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    ca, broker = ks.ca_cert_file(s).read_bytes(), ks.broker_keystore_file(s).read_bytes()
    ks.ensure_kafka_secrets(s, now=dt.datetime.now(dt.UTC) + ks.BROKER_CERT_LIFETIME - ks.RENEW_BEFORE / 2)
    assert ks.ca_cert_file(s).read_bytes() == ca and ks.broker_keystore_file(s).read_bytes() != broker


def test_every_service_gets_its_own_principal_and_the_spec_grants_only_the_matrix(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    spec = ks.provisioning_spec(s).splitlines()
    assert {line.split()[1] for line in spec if line.startswith("topic ")} == set(NODE_TOPICS)
    assert {line.split()[1] for line in spec if line.startswith("user ")} == set(KAFKA_GRANTS)  # not the super user
    acls = {tuple(line.split()[1:]) for line in spec if line.startswith("acl ")}
    assert acls == {(g.principal, *acl) for g in KAFKA_GRANTS.values() for acl in g.acls()}
    assert not any(ks.read_password(s, p) in "\n".join(spec) for p in KAFKA_GRANTS)  # files, not passwords
    options = ks.client_options(s, "metadata")
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "metadata")
    assert options["sasl_plain_password"] == ks.read_password(s, "metadata")
