"""Kafka's TLS and SASL for the local stack: its own CA, the broker's certificate, one SCRAM user per principal.

Everything lives in ``<state>/secrets/kafka`` (mode 0700, files 0600), generated on first start:

- ``ca.crt`` / ``ca.key``: the stack's CA (ECDSA P-256, :data:`CA_LIFETIME`); clients trust ``ca.crt`` only.
- ``broker.pem``: the broker's key (PKCS#8) and certificate chain in one PEM file (Kafka's PEM key store,
  KIP-651), for the SASL_SSL client listener and the mutual-TLS controller listener; valid
  :data:`BROKER_CERT_LIFETIME` and renewed at start when less than :data:`RENEW_BEFORE` is left.
- ``<principal>.password``: the SCRAM-SHA-512 password of ``admin`` (the broker's own principal, the only
  super user), ``operator`` (the CLI) and each service (decision 0060).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eucaim_node.events import KAFKA_GRANTS, SUPER_USER

from .configs import secrets_dir, write_private
from .settings import StackSettings

#: SASL mechanism of every principal (RFC 7677 SCRAM with SHA-512, as the services' settings default to).
SASL_MECHANISM = "SCRAM-SHA-512"
#: Every SCRAM principal of the stack: the super user first, then the operator and the services.
PRINCIPALS: tuple[str, ...] = (SUPER_USER, *KAFKA_GRANTS)
#: The broker certificate's common name; the controller listener maps it to the super user.
BROKER_COMMON_NAME = "eucaim-kafka-broker"
CA_LIFETIME = dt.timedelta(days=5 * 365)
BROKER_CERT_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


# -- layout -----------------------------------------------------------------------------------------------------

def kafka_secrets_dir(settings: StackSettings) -> Path:
    return secrets_dir(settings) / "kafka"


def ca_cert_file(settings: StackSettings) -> Path:
    return kafka_secrets_dir(settings) / "ca.crt"


def ca_key_file(settings: StackSettings) -> Path:
    return kafka_secrets_dir(settings) / "ca.key"


def broker_keystore_file(settings: StackSettings) -> Path:
    return kafka_secrets_dir(settings) / "broker.pem"


def password_file(settings: StackSettings, principal: str) -> Path:
    if principal not in PRINCIPALS:
        raise KeyError(f"unknown Kafka principal {principal!r}; expected one of {', '.join(PRINCIPALS)}")
    return kafka_secrets_dir(settings) / f"{principal}.password"


def read_password(settings: StackSettings, principal: str) -> str:
    return password_file(settings, principal).read_text(encoding="ascii").strip()


def service_principal(service: str) -> str:
    """The Kafka principal of a service module (``catalogue_sync`` -> ``catalogue-sync``)."""
    return service.replace("_", "-")


# -- what clients are given ---------------------------------------------------------------------------------------

def kafka_env(settings: StackSettings, principal: str) -> dict[str, str]:
    """The ``EUCAIM_KAFKA_*`` settings of one principal: SASL_SSL, its SCRAM user and password file, the CA."""
    return {
        "EUCAIM_KAFKA_BOOTSTRAP_SERVERS": f"{settings.host}:{settings.kafka_port}",
        "EUCAIM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EUCAIM_KAFKA_SASL_MECHANISM": SASL_MECHANISM,
        "EUCAIM_KAFKA_SASL_USERNAME": principal,
        "EUCAIM_KAFKA_SASL_PASSWORD_FILE": str(password_file(settings, principal)),
        "EUCAIM_KAFKA_SSL_CA_FILE": str(ca_cert_file(settings)),
    }


def client_options(settings: StackSettings, principal: str = SUPER_USER) -> dict[str, Any]:
    """aiokafka connection options (bootstrap, TLS, SASL) of ``principal``, the same the services derive."""
    from eucaim_node.runtime import KafkaSettings

    env = kafka_env(settings, principal)
    return KafkaSettings(**{k.removeprefix("EUCAIM_").lower(): v for k, v in env.items()}).kafka_client_options()


def java_client_properties(settings: StackSettings, principal: str = SUPER_USER) -> str:
    """The same for a Java Kafka client (``--command-config`` / the provisioning step); holds the password."""
    password = read_password(settings, principal)
    return "\n".join([
        f"bootstrap.servers={settings.host}:{settings.kafka_port}",
        "security.protocol=SASL_SSL",
        f"sasl.mechanism={SASL_MECHANISM}",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{principal}" password="{password}";',
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca_cert_file(settings)}",
        "",
    ])


# -- generation ---------------------------------------------------------------------------------------------------

def ensure_kafka_secrets(settings: StackSettings, now: dt.datetime | None = None) -> None:
    """Create what is missing: passwords, the CA, a broker certificate (renewed when near expiry or stale)."""
    directory = kafka_secrets_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for principal in PRINCIPALS:
        path = password_file(settings, principal)
        if not path.is_file():
            write_private(path, secrets.token_urlsafe(32))
    now = now or dt.datetime.now(dt.UTC)
    if not (ca_cert_file(settings).is_file() and ca_key_file(settings).is_file()) or _expiring(
            ca_cert_file(settings), now):
        _write_ca(settings, now)
        broker_keystore_file(settings).unlink(missing_ok=True)  # signed by the old CA
    if _broker_certificate_stale(settings, now):
        _write_broker_certificate(settings, now)


def _expiring(cert_path: Path, now: dt.datetime) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc - now < RENEW_BEFORE


def _broker_certificate_stale(settings: StackSettings, now: dt.datetime) -> bool:
    path = broker_keystore_file(settings)
    if not path.is_file():
        return True
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_cert_file(settings).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (_expiring(path, now) or cert.issuer != ca.subject
            or _host_name(settings.host) not in names)


def _host_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_ca(settings: StackSettings, now: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"eucaim-node {settings.name} Kafka CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(ca_key_file(settings), _pkcs8(key))
    write_private(ca_cert_file(settings), cert.public_bytes(serialization.Encoding.PEM))


def _write_broker_certificate(settings: StackSettings, now: dt.datetime) -> None:
    ca_key = serialization.load_pem_private_key(ca_key_file(settings).read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_file(settings).read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    names = {_host_name(settings.host), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))}
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_COMMON_NAME)])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + BROKER_CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sorted(names, key=str)), critical=False)
        # Server for the clients, client too: the broker reaches its own controller listener over mutual TLS.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    write_private(broker_keystore_file(settings), _pkcs8(key) + chain)


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# -- the broker's side ----------------------------------------------------------------------------------------------

def broker_security(settings: StackSettings) -> dict[str, str]:
    """The placeholders of server.properties.template that configure TLS, SASL and the authorizer."""
    return {
        "super_user": SUPER_USER,
        "super_user_password": read_password(settings, SUPER_USER),
        "keystore": str(broker_keystore_file(settings)),
        "truststore": str(ca_cert_file(settings)),
        "broker_common_name": BROKER_COMMON_NAME,
    }


def format_scram_arguments(settings: StackSettings) -> list[str]:
    """``kafka-storage format`` arguments that bootstrap the super user's SCRAM credential (KIP-900).

    Only the super user: it must exist before the broker serves anyone; the others are upserted by
    :func:`provisioning_spec` on every start, so a new or rotated password needs no reformat.
    """
    return ["--add-scram", f"{SASL_MECHANISM}=[name={SUPER_USER},password={read_password(settings, SUPER_USER)}]"]


def provisioning_spec(settings: StackSettings) -> str:
    """What deploy/local/kafka/Provision.java applies: every node topic, a SCRAM user and the ACLs per grant."""
    from eucaim_node.events import NODE_TOPICS

    lines = [f"topic {topic}" for topic in NODE_TOPICS]
    for grant in KAFKA_GRANTS.values():
        lines.append(f"user {grant.principal} {password_file(settings, grant.principal)}")
        lines += [f"acl {grant.principal} {kind} {name} {operation}" for kind, name, operation in grant.acls()]
    return "\n".join(lines) + "\n"





def provision_script() -> str:
    """A POSIX shell script that provisions an operator's Kafka with its own tools (kafka-topics, kafka-configs,
    kafka-acls): every node topic, one SCRAM-SHA-512 user per grant, and exactly the grants' ACLs.

    What compose's ``kafka-setup`` runs (deploy/compose/kafka-provision.sh, checked against this by a test) and
    what ``eucaim-node kafka provision-script`` prints for production. It runs as a super user through
    ``$KAFKA_COMMAND_CONFIG``; each password is read from ``$KAFKA_PASSWORDS_DIR/kafka-<principal>.password``.
    """
    from eucaim_node.events import NODE_TOPICS

    tool = '"$KAFKA_BIN/{}" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG"'
    lines = [
        "#!/bin/sh",
        "# Generated from the node's grant matrix (eucaim_node.events.grants) by `eucaim-node kafka provision-script`;",
        "# do not edit (tests/test_compose.py fails when it is stale). Idempotent: run it after every upgrade.",
        "set -eu",
        ': "${KAFKA_BIN:=/opt/kafka/bin}" "${KAFKA_BOOTSTRAP:=kafka:9094}"',
        ': "${KAFKA_COMMAND_CONFIG:=/etc/eucaim/kafka-admin.properties}" "${KAFKA_PASSWORDS_DIR:=/run/secrets}"',
        ': "${KAFKA_TOPIC_PARTITIONS:=3}" "${KAFKA_REPLICATION_FACTOR:=1}"',
        "",
        "# Topics: created here, never by the services (they get no CREATE).",
        f"for topic in {' '.join(NODE_TOPICS)}; do",
        f"  {tool.format('kafka-topics.sh')} --create --if-not-exists --topic \"$topic\" \\",
        '    --partitions "$KAFKA_TOPIC_PARTITIONS" --replication-factor "$KAFKA_REPLICATION_FACTOR"',
        "done",
    ]
    for grant in KAFKA_GRANTS.values():
        lines += ["", f"# {grant.principal}",
                  f"{tool.format('kafka-configs.sh')} --alter --entity-type users --entity-name {grant.principal} "
                  f'--add-config "{SASL_MECHANISM}=[password=$(cat "$KAFKA_PASSWORDS_DIR/kafka-{grant.principal}.password")]"']
        by_operation: dict[tuple[str, str], list[str]] = {}
        for kind, name, operation in grant.acls():
            by_operation.setdefault((kind, operation), []).append(name)
        for (kind, operation), names in by_operation.items():
            resources = " ".join(f"--{kind.lower()} {name}" for name in names)
            lines.append(f"{tool.format('kafka-acls.sh')} --add --allow-principal User:{grant.principal} "
                         f"--operation {operation.capitalize()} {resources}")
    return "\n".join(lines) + "\n"
