import pytest

from eucaim_node.runtime import ConfigurationError, KafkaSettings, ServiceSettings, load_settings


class _Settings(ServiceSettings, KafkaSettings):
    pass


def test_missing_and_invalid_variables_are_named(monkeypatch, capsys):
    monkeypatch.delenv("EUCAIM_HEALTH_PORT", raising=False)
    monkeypatch.setenv("EUCAIM_KAFKA_MAX_ATTEMPTS", "0")
    with pytest.raises(ConfigurationError) as exc:
        load_settings(_Settings)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "EUCAIM_HEALTH_PORT: Field required" in err
    assert "EUCAIM_KAFKA_MAX_ATTEMPTS" in err


def test_valid_environment_loads(monkeypatch):
    monkeypatch.setenv("EUCAIM_HEALTH_PORT", "8101")
    monkeypatch.setenv("EUCAIM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("EUCAIM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv("EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT", "true")
    settings = load_settings(_Settings)
    assert settings.health_port == 8101 and settings.kafka_bootstrap_servers == "127.0.0.1:19092"
