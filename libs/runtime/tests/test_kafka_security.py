"""Kafka TLS/SASL settings: one source for FastStream's broker and the aiokafka clients (admin, lag, CLI)."""

import ssl

import pytest
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from eucaim_node.runtime import KafkaSettings


def test_plaintext_is_the_default():
    settings = KafkaSettings(kafka_bootstrap_servers="kafka:9092")
    assert settings.kafka_client_options() == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}
    assert settings.kafka_broker_security() is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_reads_the_password_from_its_file_and_the_broker_gets_the_same_options(tmp_path, protocol, mechanism):
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret\n")
    settings = KafkaSettings(kafka_bootstrap_servers="kafka:9093", kafka_security_protocol=protocol,
                             kafka_sasl_mechanism=mechanism, kafka_sasl_username="eucaim-node",
                             kafka_sasl_password_file=secret)
    options = settings.kafka_client_options()
    assert (options["security_protocol"], options["sasl_mechanism"]) == (protocol, mechanism)
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("eucaim-node", "s3cret")
    assert isinstance(options.get("ssl_context"), ssl.SSLContext) == (protocol == "SASL_SSL")
    broker = parse_security(settings.kafka_broker_security())
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert broker[key] == options[key], key
    assert "s3cret" not in repr(settings)  # the password is read when connecting, never held in settings


def test_tls_only_uses_a_verifying_context():
    settings = KafkaSettings(kafka_security_protocol="SSL")
    context = settings.kafka_client_options()["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert parse_security(settings.kafka_broker_security())["security_protocol"] == "SSL"


def test_sasl_without_credentials_or_with_an_unreadable_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ValidationError, match="EUCAIM_KAFKA_SASL_USERNAME"):
        KafkaSettings(kafka_security_protocol="SASL_SSL")
    with pytest.raises(ValidationError, match="cannot read"):
        KafkaSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u",
                      kafka_sasl_password_file=tmp_path / "missing")
    with pytest.raises(ValidationError, match="cannot read"):
        KafkaSettings(kafka_security_protocol="SSL", kafka_ssl_ca_file=tmp_path / "missing-ca.pem")
