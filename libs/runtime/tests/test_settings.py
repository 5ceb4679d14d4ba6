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


def test_help_lists_every_variable_and_exits_zero(capsys):
    from eucaim_node.runtime.settings import exit_on_arguments

    with pytest.raises(SystemExit) as exc:
        exit_on_arguments("catalogue-sync", _Settings, ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m eucaim_node.catalogue_sync")
    for field, info in _Settings.model_fields.items():
        assert f"EUCAIM_{field.upper()}  ({'required' if info.is_required() else 'default'}" in out


def test_other_arguments_are_refused_in_one_line_and_none_pass(capsys):
    from eucaim_node.runtime.settings import exit_on_arguments

    exit_on_arguments("audit", _Settings, [])  # no arguments: the service starts
    with pytest.raises(ConfigurationError) as exc:
        exit_on_arguments("audit", _Settings, ["--port", "8080"])
    assert exc.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "unexpected arguments '--port 8080'" in line
