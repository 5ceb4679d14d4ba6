"""Kafka's TLS and SASL for the local stack: a broker certificate from the stack's CA, one SCRAM user per principal.

Generated on first start with the other secrets (:func:`secrets_files.ensure_secrets`):

- the stack's CA (``secrets/ca.pem``, :mod:`.tls`), which clients trust;
- ``secrets/kafka/broker-keystore.pem``: the broker's key (PKCS#8) and certificate chain in one PEM file
  (Kafka's PEM key store, KIP-651), for the SASL_SSL client listener and the mutual-TLS controller listener;
  the certificate (:func:`tls.ensure_server_certificate`, server and client use) is renewed at start when it
  expires within 30 days or its names change;
- ``secrets/kafka/<principal>.password``: the SCRAM-SHA-512 password of ``admin`` (the broker's own
  principal, the only super user), ``operator`` (the CLI) and each service (decision 0060).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from eucaim_node.events import KAFKA_GRANTS, SUPER_USER

from . import tls
from .configs import ca_file as ca_cert_file, secrets_dir, write_if_changed, write_private
from .settings import StackSettings

#: SASL mechanism of every principal (RFC 7677 SCRAM with SHA-512, as the services' settings default to).
SASL_MECHANISM = "SCRAM-SHA-512"
#: Every SCRAM principal of the stack: the super user first, then the operator and the services.
PRINCIPALS: tuple[str, ...] = (SUPER_USER, *KAFKA_GRANTS)
#: The broker certificate's name (:func:`tls.ensure_server_certificate`); its CN maps to the super user.
BROKER_CERTIFICATE = "kafka"
BROKER_COMMON_NAME = f"eucaim-node {BROKER_CERTIFICATE}"


# -- layout -----------------------------------------------------------------------------------------------------

def kafka_secrets_dir(settings: StackSettings) -> Path:
    return secrets_dir(settings) / "kafka"


def broker_keystore_file(settings: StackSettings) -> Path:
    return kafka_secrets_dir(settings) / "broker-keystore.pem"


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

def ensure_kafka_secrets(settings: StackSettings) -> None:
    """Create what is missing: a password per principal; the broker's key store from the stack's CA (renewed
    with its certificate)."""
    directory = kafka_secrets_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for principal in PRINCIPALS:
        path = password_file(settings, principal)
        if not path.is_file():
            write_private(path, secrets.token_urlsafe(32))
    ca = tls.ensure_ca(secrets_dir(settings))
    issued = tls.ensure_server_certificate(directory, BROKER_CERTIFICATE, (settings.host, "localhost"), ca,
                                           client_auth=True)
    write_if_changed(broker_keystore_file(settings),
                     issued.key.read_text(encoding="ascii") + issued.certificate.read_text(encoding="ascii"), 0o600)


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
    """What deploy/local/kafka/Provision.java applies: every node topic, a SCRAM user and the ACLs per grant.

    Provision deletes every other ACL and the SCRAM credential of every undeclared user, except the super
    user's (named by the ``superuser`` line): a principal dropped from the grants can no longer log in.
    """
    from eucaim_node.events import NODE_TOPICS

    lines = [f"superuser {SUPER_USER}", *(f"topic {topic}" for topic in NODE_TOPICS)]
    for grant in KAFKA_GRANTS.values():
        lines.append(f"user {grant.principal} {password_file(settings, grant.principal)}")
        lines += [f"acl {grant.principal} {kind} {name} {operation}" for kind, name, operation in grant.acls()]
    return "\n".join(lines) + "\n"





def provision_script() -> str:
    """A POSIX shell script that provisions an operator's Kafka with its own tools (kafka-topics, kafka-configs,
    kafka-acls): every node topic, one SCRAM-SHA-512 user per grant, and exactly the grants' ACLs.

    What compose's ``kafka-setup`` runs (deploy/compose/kafka-provision.sh, checked against this by a test) and
    what ``eucaim-node kafka provision-script`` prints for production. It runs as a super user through
    ``$KAFKA_COMMAND_CONFIG``; each password is read from ``$KAFKA_PASSWORDS_DIR/kafka-<principal>.password``
    and handed to ``kafka-configs.sh --add-config-file`` in a 0600 file of a private temporary directory, so no
    command line (``ps``) carries it.
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
    lines += [
        "",
        "# SCRAM passwords go to kafka-configs.sh in a 0600 file (--add-config-file), never as an argument that",
        "# `ps` would show; printf is a shell builtin, so no process is given the password either.",
        "umask 077",
        'scram_dir="$(mktemp -d)"',
        "trap 'rm -rf \"$scram_dir\"' EXIT",
    ]
    for grant in KAFKA_GRANTS.values():
        credential = f'"$scram_dir/{grant.principal}.properties"'
        lines += ["", f"# {grant.principal}",
                  f"printf '{SASL_MECHANISM}=password=%s\\n' "
                  f'"$(cat "$KAFKA_PASSWORDS_DIR/kafka-{grant.principal}.password")" > {credential}',
                  f"{tool.format('kafka-configs.sh')} --alter --entity-type users --entity-name {grant.principal} "
                  f"--add-config-file {credential}",
                  f"rm -f {credential}"]
        by_operation: dict[tuple[str, str], list[str]] = {}
        for kind, name, operation in grant.acls():
            by_operation.setdefault((kind, operation), []).append(name)
        for (kind, operation), names in by_operation.items():
            resources = " ".join(f"--{kind.lower()} {name}" for name in names)
            lines.append(f"{tool.format('kafka-acls.sh')} --add --allow-principal User:{grant.principal} "
                         f"--operation {operation.capitalize()} {resources}")
    return "\n".join(lines) + "\n"
