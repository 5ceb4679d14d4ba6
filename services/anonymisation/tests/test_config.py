import pytest

from eucaim_node.anonymisation.config import AnonymisationSettings
from eucaim_node.deid import Option


#: These tests are about de-identification settings; Kafka's are tested in libs/runtime.
DEVELOPMENT_KAFKA = {"kafka_security_protocol": "PLAINTEXT", "kafka_allow_insecure_plaintext": True}


def settings(**env) -> AnonymisationSettings:
    return AnonymisationSettings.model_validate({"health_port": 1, "hmac_key_file": "/k", **DEVELOPMENT_KAFKA, **env})


def test_default_profile_is_the_eucaim_profile():
    profile = settings().profile()
    assert Option.CLEAN_DESCRIPTORS in profile.options and Option.RETAIN_PATIENT_CHARACTERISTICS in profile.options


def test_options_from_a_comma_separated_variable(monkeypatch):
    monkeypatch.setenv("EUCAIM_HEALTH_PORT", "1")
    monkeypatch.setenv("EUCAIM_HMAC_KEY_FILE", "/k")
    monkeypatch.setenv("EUCAIM_DEID_OPTIONS", "clean-graphics, retain-safe-private")
    profile = AnonymisationSettings(**DEVELOPMENT_KAFKA).profile()
    assert {Option.CLEAN_GRAPHICS, Option.RETAIN_SAFE_PRIVATE} <= set(profile.options)


@pytest.mark.parametrize("env", [{"deid_profile": "strictest"}, {"deid_options": "bogus"}])
def test_unknown_profile_or_option_is_a_configuration_error(env):
    with pytest.raises(ValueError):
        settings(**env).profile()
