"""MongoSettings: secure by default (TLS and a user of its own), secrets out of the environment and of repr."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eucaim_node.store import MongoSettings, connect

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "mongo-password"
    path.write_text(PASSWORD + "\n")
    return path


def test_a_service_without_credentials_refuses_to_connect():
    settings = MongoSettings()
    with pytest.raises(ValueError, match="EUCAIM_MONGO_USERNAME and EUCAIM_MONGO_PASSWORD_FILE"):
        connect(settings, app_name="test")


def test_own_user_from_a_password_file_over_tls(password_file, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = MongoSettings(mongo_username="eucaim-audit", mongo_password_file=password_file, mongo_tls_ca_file=ca)
    assert settings.mongo_client_options() == {
        "tls": True, "tlsCAFile": str(ca), "username": "eucaim-audit", "password": PASSWORD,
        "authSource": "admin", "authMechanism": "SCRAM-SHA-256"}


def test_tls_is_on_even_without_a_ca_file(password_file):
    options = MongoSettings(mongo_username="u", mongo_password_file=password_file).mongo_client_options()
    assert options["tls"] is True and "tlsCAFile" not in options


def test_secrets_stay_out_of_repr_and_of_the_client(password_file):
    settings = MongoSettings(mongo_url="mongodb://127.0.0.1:1/", mongo_username="u", mongo_password_file=password_file)
    client, _ = connect(settings, app_name="test")  # lazy: opens no connection
    assert PASSWORD not in repr(settings) + str(settings) + repr(client)


def test_credentials_in_the_url_count_and_stay_secret():
    settings = MongoSettings(mongo_url=f"mongodb://u:{PASSWORD}@db:27017/")
    assert settings.mongo_client_options() == {"tls": True}
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize("values, variable", [
    ({"mongo_username": "u"}, "EUCAIM_MONGO_PASSWORD_FILE"),
    ({"mongo_password_file": "/etc/hostname"}, "EUCAIM_MONGO_USERNAME"),
    ({"mongo_password_file": "/nonexistent/pw", "mongo_username": "u"}, "mongo_password_file"),
])
def test_incomplete_credentials_are_a_configuration_error(values, variable):
    with pytest.raises(ValidationError, match=variable):
        MongoSettings(**values)


def test_a_user_in_the_url_and_in_the_settings_is_ambiguous(password_file):
    with pytest.raises(ValidationError, match="use one of them"):
        MongoSettings(mongo_url="mongodb://a:b@db/", mongo_username="u", mongo_password_file=password_file)


def test_plaintext_without_credentials_only_when_the_setting_says_so(monkeypatch):
    monkeypatch.setenv("EUCAIM_MONGO_INSECURE_PLAINTEXT", "true")
    assert MongoSettings().mongo_client_options() == {}
