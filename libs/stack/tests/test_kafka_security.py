"""The stack's Kafka secrets and provisioning spec: pure generation, no servers."""

from __future__ import annotations

import ipaddress
import stat
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

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
    public = directory / f"{ks.BROKER_CERTIFICATE}.pem"  # the certificate chain alone
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir() if p != public} == {0o600}
    passwords = {p: ks.read_password(s, p) for p in (SUPER_USER, *KAFKA_GRANTS)}
    assert len(set(passwords.values())) == len(passwords) and all(len(v) >= 40 for v in passwords.values())
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    ks.ensure_kafka_secrets(s)  # idempotent: nothing regenerated
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_the_broker_key_store_holds_a_certificate_from_the_stack_ca_for_server_and_client_use(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    pem = ks.broker_keystore_file(s).read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM key store wants
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
    assert cert.subject.rfc4514_string() == f"CN={ks.BROKER_COMMON_NAME}"  # what the controller maps to admin
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)
    ca = x509.load_pem_x509_certificate(ks.ca_cert_file(s).read_bytes())
    cert.verify_directly_issued_by(ca)
    context = ssl.create_default_context(cafile=str(ks.ca_cert_file(s)))  # what clients load
    assert context.cert_store_stats()["x509_ca"] == 1


def test_the_key_store_follows_a_renewed_certificate(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    before = ks.broker_keystore_file(s).read_bytes()
    (ks.kafka_secrets_dir(s) / f"{ks.BROKER_CERTIFICATE}.pem").unlink()  # as if it had expired
    ks.ensure_kafka_secrets(s)
    assert ks.broker_keystore_file(s).read_bytes() != before


def test_every_service_gets_its_own_principal_and_the_spec_grants_only_the_matrix(tmp_path):
    s = _settings(tmp_path)
    ks.ensure_kafka_secrets(s)
    spec = ks.provisioning_spec(s).splitlines()
    assert {line.split()[1] for line in spec if line.startswith("topic ")} == set(NODE_TOPICS)
    assert {line.split()[1] for line in spec if line.startswith("user ")} == set(KAFKA_GRANTS)  # not the super user
    # Provision.java deletes the SCRAM login and ACLs of every other user but the super user's, so the spec
    # must name exactly one super user, admin, which is neither a user line nor dropped.
    assert [line for line in spec if line.startswith("superuser ")] == [f"superuser {ks.SUPER_USER}"]
    assert ks.SUPER_USER == "admin"
    acls = {tuple(line.split()[1:]) for line in spec if line.startswith("acl ")}
    assert acls == {(g.principal, *acl) for g in KAFKA_GRANTS.values() for acl in g.acls()}
    assert not any(ks.read_password(s, p) in "\n".join(spec) for p in KAFKA_GRANTS)  # files, not passwords
    options = ks.client_options(s, "metadata")
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "metadata")
    assert options["sasl_plain_password"] == ks.read_password(s, "metadata")


def test_formatting_kafka_keeps_the_super_users_password_off_the_command_line(tmp_path, monkeypatch):
    """`kafka-storage format --add-scram` needs the password: it goes in a 0600 @argfile, never in argv (ps)."""
    import subprocess

    from eucaim_node.stack import Stack, manager
    from eucaim_node.stack.secrets_files import ensure_secrets

    s = _settings(tmp_path)
    ensure_secrets(s)
    password = ks.read_password(s, SUPER_USER)
    seen = []

    def run(argv, **kwargs):
        argfile = Path(argv[1].removeprefix("@"))
        seen.append((argv, stat.S_IMODE(argfile.stat().st_mode), argfile.read_text()))
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(manager.subprocess, "run", run)
    properties = tmp_path / "kafka" / "server.properties"
    properties.parent.mkdir()
    Stack(s)._format_kafka(tmp_path / "libs", properties, tmp_path / "log4j2.properties", Stack(s).process("kafka"))
    [(argv, mode, content)] = seen
    assert argv[0] == "java" and len(argv) == 2 and argv[1].startswith("@")
    assert password not in " ".join(argv) and password in content and mode == 0o600
    assert not Path(argv[1][1:]).exists()  # removed once the tool ran
    assert password not in Stack(s).process("kafka").log_path.read_text()
