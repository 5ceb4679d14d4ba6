"""Kafka TLS/SASL settings: one source for FastStream's broker and the aiokafka clients (admin, lag, CLI)."""

import ssl

import pytest
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from eucaim_node.runtime import ConfigurationError, KafkaSettings, load_settings


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_kafka_without_tls_is_refused_with_one_line_naming_the_variable(monkeypatch, capsys, protocol):
    monkeypatch.setenv("EUCAIM_KAFKA_SECURITY_PROTOCOL", protocol)
    monkeypatch.delenv("EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT", raising=False)
    with pytest.raises(ConfigurationError):
        load_settings(KafkaSettings)
    [line] = capsys.readouterr().err.splitlines()[1:]
    assert line.startswith("  EUCAIM_KAFKA_SECURITY_PROTOCOL:") and "EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT=true" in line


def test_sasl_ssl_is_the_default_and_plaintext_needs_the_explicit_setting():
    with pytest.raises(ValidationError, match="EUCAIM_KAFKA_SASL_USERNAME"):
        KafkaSettings(kafka_bootstrap_servers="kafka:9092")
    settings = KafkaSettings(kafka_bootstrap_servers="kafka:9092", kafka_security_protocol="PLAINTEXT",
                             kafka_allow_insecure_plaintext=True)
    assert settings.kafka_client_options() == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}
    assert settings.kafka_broker_security() is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_reads_the_password_from_its_file_and_the_broker_gets_the_same_options(tmp_path, protocol, mechanism):
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret\n")
    settings = KafkaSettings(kafka_bootstrap_servers="kafka:9093", kafka_security_protocol=protocol,
                             kafka_sasl_mechanism=mechanism, kafka_sasl_username="eucaim-node",
                             kafka_sasl_password_file=secret,
                             kafka_allow_insecure_plaintext=protocol == "SASL_PLAINTEXT")
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
