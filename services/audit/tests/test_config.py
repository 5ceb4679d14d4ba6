import pytest

from eucaim_node.audit.config import AuditSettings
from eucaim_node.audit.main import create_app
from eucaim_node.ledger import SigningKeyError


def settings(**values):
    return AuditSettings.model_validate({"health_port": 18080, "mongo_insecure_plaintext": True,
                                         "kafka_security_protocol": "PLAINTEXT", "kafka_allow_insecure_plaintext": True,
                                         **values})


def test_a_missing_signing_key_is_a_configuration_error_unless_generation_is_allowed(tmp_path):
    key = tmp_path / "secrets" / "audit-signing.pem"
    with pytest.raises(SigningKeyError, match="does not exist"):
        create_app(settings(audit_signing_key_file=key))
    assert not key.exists()
    create_app(settings(audit_signing_key_file=key, audit_signing_key_generate=True))
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_key_that_is_not_ed25519_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = tmp_path / "ec.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        create_app(settings(audit_signing_key_file=key))
