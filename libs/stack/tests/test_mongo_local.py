"""The local stack's MongoDB posture without servers: one user and password file per service, TLS files, flags."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from eucaim_node.stack import SERVICE_MODULES, Stack, StackSettings, configs, ferretdb, tls
from eucaim_node.stack.secrets_files import ensure_secrets
from eucaim_node.store.access import PRINCIPALS


def test_each_service_connects_as_its_own_user_with_its_own_password_file(tmp_path: Path) -> None:
    stack = Stack(StackSettings.test_profile(state_dir=tmp_path))
    users, files = set(), set()
    for service in SERVICE_MODULES:
        env = stack.service_env(service)
        assert env["EUCAIM_MONGO_USERNAME"] == f"eucaim-{service.replace('_', '-')}"
        assert env["EUCAIM_MONGO_PASSWORD_FILE"] == str(tmp_path / "secrets" / f"mongo-{service.replace('_', '-')}-password")
        assert env["EUCAIM_MONGO_TLS_CA_FILE"] == str(tmp_path / "secrets" / "ca.pem")
        assert not [value for key, value in env.items() if "mongo-" in value and key != "EUCAIM_MONGO_PASSWORD_FILE"]
        users.add(env["EUCAIM_MONGO_USERNAME"])
        files.add(env["EUCAIM_MONGO_PASSWORD_FILE"])
    assert len(users) == len(files) == len(SERVICE_MODULES)
    assert configs.render_node_env(stack.settings)["EUCAIM_MONGO_USERNAME"] == "eucaim-cli"  # node.env is the CLI's


def test_every_principal_has_a_generated_password_0600(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    ensure_secrets(s)
    passwords = {}
    for principal in (configs.MONGO_ADMIN, *PRINCIPALS):
        path = configs.mongo_password_file(s, principal)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        passwords[principal] = path.read_text()
    assert len(set(passwords.values())) == len(passwords) and min(map(len, passwords.values())) >= 32
    ensure_secrets(s)
    assert {p: configs.mongo_password_file(s, p).read_text() for p in passwords} == passwords


def test_the_stack_settings_of_a_service_are_what_the_service_reads(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    ensure_secrets(s)
    tls.ensure_ca(configs.secrets_dir(s))
    options = Stack(s).mongo_options("audit")
    assert options["username"] == "eucaim-audit" and options["tls"] is True
    assert options["password"] == configs.mongo_password_file(s, "audit").read_text().strip()
    assert options["tlsCAFile"] == str(configs.ca_file(s))


def test_ferretdb_listens_on_tls_only_and_requires_authentication(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    command = ferretdb.ferretdb_command(s, Path("/bin/ferretdb"), tmp_path, tls.server_files(tmp_path, "ferretdb"), "root")
    assert "--listen-addr=" in command and f"--listen-tls=127.0.0.1:{s.ferretdb_port}" in command
    assert "--test-enable-new-auth" in command and "--setup-username=root" in command
    assert not [arg for arg in command if "password" in arg.lower()]  # the first password goes by environment


def test_ca_and_server_certificate(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path)
    leaf = tls.ensure_server_certificate(tmp_path, "ferretdb", ("127.0.0.1", "localhost"), ca)
    assert stat.S_IMODE(ca.key.stat().st_mode) == stat.S_IMODE(leaf.key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(leaf.certificate.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(v) for v in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    before = leaf.certificate.read_bytes()
    assert tls.ensure_server_certificate(tmp_path, "ferretdb", ("127.0.0.1", "localhost"), ca).certificate.read_bytes() == before
    tls.ensure_server_certificate(tmp_path, "ferretdb", ("127.0.0.1",), ca)  # names changed: reissued
    assert leaf.certificate.read_bytes() != before
    assert tls.ensure_ca(tmp_path).certificate.read_bytes() == ca.certificate.read_bytes()  # the CA is kept
