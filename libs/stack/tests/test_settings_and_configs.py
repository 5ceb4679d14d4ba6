"""Pure logic: settings, port offsets, rendered configs, node.env. No servers."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from eucaim_node.stack import PORT_FIELDS, SERVICE_MODULES, Stack, StackSettings
from eucaim_node.stack import configs
from eucaim_node.stack.secrets_files import ensure_secrets, read_orthanc_password
from eucaim_node.stack.settings import find_repo_root

KAFKA_ENV_NAMES = {
    "EUCAIM_KAFKA_BOOTSTRAP_SERVERS",
    "EUCAIM_KAFKA_SECURITY_PROTOCOL",
    "EUCAIM_KAFKA_SASL_MECHANISM",
    "EUCAIM_KAFKA_SASL_USERNAME",
    "EUCAIM_KAFKA_SASL_PASSWORD_FILE",
    "EUCAIM_KAFKA_SSL_CA_FILE",
}
#: The operator CLI's settings (node.env): Kafka (the operator's principal), MongoDB, the HMAC key (withdraw),
#: the ledger (audit verify).
NODE_ENV_NAMES = KAFKA_ENV_NAMES | {
    "EUCAIM_MONGO_URL",
    "EUCAIM_MONGO_DATABASE",
    "EUCAIM_MONGO_USERNAME",
    "EUCAIM_MONGO_PASSWORD_FILE",
    "EUCAIM_MONGO_TLS_CA_FILE",
    "EUCAIM_HMAC_KEY_FILE",
    "EUCAIM_SITE_PREFIX",
    "EUCAIM_DATASET_ROOT",
    "EUCAIM_AUDIT_SIGNING_KEY_FILE",
    "EUCAIM_AUDIT_WITNESS_URL",
    "EUCAIM_AUDIT_WITNESS_VKEY_FILE",
    "EUCAIM_AUDIT_WITNESS_TOKEN_FILE",
    "EUCAIM_AUDIT_LOG_PUBLIC_KEY_FILE",
    "EUCAIM_JOBS_URL",
    "EUCAIM_JOBS_REVIEW_TOKEN_FILE",
    "EUCAIM_AUDIT_SIGNING_KEY_GENERATE",
    "EUCAIM_AUDIT_LOG_ORIGIN",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EUCAIM_STACK_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_make_up_ports() -> None:
    s = StackSettings()
    assert s.name == "local"
    assert (s.kafka_port, s.kafka_controller_port, s.ferretdb_port) == (9092, 9093, 27017)
    assert (s.clinical_http_port, s.clinical_dicom_port) == (8042, 4242)
    assert (s.research_http_port, s.research_dicom_port) == (8043, 4243)
    assert [s.health_port(m) for m in SERVICE_MODULES] == [8101, 8102, 8103, 8104, 8105, 8107, 8108]
    assert (s.clinical_orthanc_username, s.research_orthanc_username) == ("eucaim-clinical", "eucaim-research")
    assert s.stable_age == 5
    assert s.kafka_version == "4.2.0"
    assert s.mongo_database == "eucaim_node"
    assert s.site_prefix == "EUCAIM-LOCAL"
    root = find_repo_root()
    assert root is not None
    assert s.state == root / ".stack" / "local"


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert StackSettings().cache_dir == tmp_path / "eucaim-node"


def test_test_profile_shifts_every_port_by_10000() -> None:
    local, test = StackSettings(), StackSettings.test_profile()
    for field in PORT_FIELDS:
        assert getattr(test, field) == getattr(local, field) + 10000, field
    assert (test.kafka_port, test.ferretdb_port) == (19092, 37017)
    assert (test.clinical_http_port, test.clinical_dicom_port) == (18042, 14242)
    assert (test.research_http_port, test.research_dicom_port) == (18043, 14243)
    assert test.health_port("reception") == 18101
    assert test.name == "test"
    assert test.stable_age == 2
    assert test.state.name == "test" and test.state != local.state


def test_test_profile_ignores_port_and_state_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EUCAIM_STACK_KAFKA_PORT", "9999")
    monkeypatch.setenv("EUCAIM_STACK_STATE_DIR", str(tmp_path / "make-up-state"))
    monkeypatch.setenv("EUCAIM_STACK_CLINICAL_ORTHANC_USERNAME", "alice")
    assert StackSettings().kafka_port == 9999
    assert StackSettings().state == tmp_path / "make-up-state"
    test = StackSettings.test_profile()
    assert test.kafka_port == 19092
    assert test.state != tmp_path / "make-up-state"
    assert test.clinical_orthanc_username == "alice"  # non-port settings still come from the environment
    assert StackSettings.test_profile(stable_age=7, state_dir=tmp_path).stable_age == 7


def test_unknown_service_is_rejected() -> None:
    with pytest.raises(KeyError):
        StackSettings().health_port("nope")


def test_kafka_properties(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    security = {"super_user": "admin", "super_user_password": "pw", "keystore": "/k.pem", "truststore": "/ca.crt",
                "broker_common_name": "broker"}
    text = configs.render_kafka_properties(s, tmp_path / "data", security)
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:19092"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL_SSL", "")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["listener.name.controller.ssl.principal.mapping.rules"] == "RULE:^CN=broker$/admin/,DEFAULT"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert 'username="admin" password="pw";' in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "3"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["min.insync.replicas"] == "1"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "transaction.state.log.min.isr"):
        assert props[key] == "1", key


def test_kafka_command_uses_the_configured_heap(tmp_path: Path) -> None:
    s = StackSettings(kafka_heap_max="1g", state_dir=tmp_path)
    command = configs.kafka_command(s, tmp_path / "libs", tmp_path / "p", tmp_path / "l")
    assert command[:3] == ["java", "-Xms256m", "-Xmx1g"]
    assert command[-2:] == ["kafka.Kafka", str(tmp_path / "p")]
    assert f"{tmp_path / 'libs'}/*" in command


def test_kafka_cluster_id_shape() -> None:
    for _ in range(50):
        cid = configs.new_kafka_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cid)


@pytest.mark.parametrize("instance,aet,http,dicom", [("clinical", "CLINICAL", 18042, 14242),
                                                     ("research", "RESEARCH", 18043, 14243)])
def test_orthanc_config(tmp_path: Path, instance: str, aet: str, http: int, dicom: int) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    config = configs.render_orthanc_config(s, instance, "s3cret")
    assert config["DicomAet"] == aet
    assert (config["HttpPort"], config["DicomPort"]) == (http, dicom)
    assert config["AuthenticationEnabled"] is True
    assert config["RegisteredUsers"] == {f"eucaim-{instance}": "s3cret"}
    assert config["StableAge"] == 2
    assert config["UnknownSopClassAccepted"] is True
    assert config["OverwriteInstances"] is True
    assert config["RemoteAccessAllowed"] is False
    assert config["DicomWeb"]["Enable"] is True
    assert config["Plugins"] == ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]
    assert config["StorageDirectory"] == str(tmp_path / f"orthanc-{instance}" / "storage")
    assert config["IndexDirectory"] == str(tmp_path / f"orthanc-{instance}" / "index")
    json.dumps(config)  # serialisable


def test_only_the_clinical_orthanc_accepts_dicom_and_only_from_listed_modalities(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path, clinical_modalities="MODALITY@127.0.0.1,CT_ROOM_2@10.0.0.7:11112")
    clinical = configs.render_orthanc_config(s, "clinical", "x")
    research = configs.render_orthanc_config(s, "research", "x")
    assert clinical["DicomServerEnabled"] is True and research["DicomServerEnabled"] is False
    for config in (clinical, research):
        assert config["DicomCheckCalledAet"] is True and config["DicomCheckModalityHost"] is True
        assert not any(config[f"DicomAlwaysAllow{command}"] for command in ("Echo", "Store", "Find", "Get", "Move"))
    assert research["DicomModalities"] == {}
    assert [(m["AET"], m["Host"], m["Port"]) for m in clinical["DicomModalities"].values()] == [
        ("MODALITY", "127.0.0.1", 104), ("CT_ROOM_2", "10.0.0.7", 11112)]
    for modality in clinical["DicomModalities"].values():
        assert modality["AllowStore"] is modality["AllowEcho"] is True
        assert not any(modality[f"Allow{c}"] for c in ("Find", "Move", "Get", "StorageCommitment"))


def test_modalities_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [str(m) for m in StackSettings().clinical_modalities] == ["MODALITY@127.0.0.1:104"]
    monkeypatch.setenv("EUCAIM_STACK_CLINICAL_MODALITIES", "CT_ROOM_2@10.1.2.3:11112, MR@[fe80::1]")
    assert [str(m) for m in StackSettings().clinical_modalities] == ["CT_ROOM_2@10.1.2.3:11112", "MR@[fe80::1]:104"]
    for wrong, complaint in [("CT@pacs.example", "not an IP address"), ("A\\B@10.0.0.1", "not an AE title"),
                             ("SEVENTEEN_CHARS_X@10.0.0.1", "not an AE title"), ("CT", "expected AET@IP"),
                             ("CT@10.0.0.1:0", "greater than or equal to 1")]:
        monkeypatch.setenv("EUCAIM_STACK_CLINICAL_MODALITIES", wrong)
        with pytest.raises(ValueError, match=complaint):
            StackSettings()


def test_node_env_is_the_operator_clis_and_holds_no_orthanc_credentials(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    env = configs.render_node_env(s)
    assert set(env) == NODE_ENV_NAMES
    assert env["EUCAIM_MONGO_URL"] == "mongodb://127.0.0.1:37017/"
    assert env["EUCAIM_MONGO_DATABASE"] == "eucaim_node"
    assert env["EUCAIM_HMAC_KEY_FILE"] == str(tmp_path / "secrets" / "hmac.key")
    assert env["EUCAIM_SITE_PREFIX"] == "EUCAIM-LOCAL"
    assert env["EUCAIM_AUDIT_WITNESS_URL"] == "http://127.0.0.1:18106"  # the witness's port is shifted too


OTEL_NAMES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_BSP_SCHEDULE_DELAY"}


def test_each_orthanc_credential_goes_only_to_its_clients(tmp_path: Path) -> None:
    stack = Stack(StackSettings.test_profile(state_dir=tmp_path))
    for service in SERVICE_MODULES:
        env = stack.service_env(service)
        clinical = {k: v for k, v in env.items() if k.startswith("EUCAIM_CLINICAL_ORTHANC_")}
        research = {k: v for k, v in env.items() if k.startswith("EUCAIM_RESEARCH_ORTHANC_")}
        assert bool(clinical) == (service in ("reception", "anonymisation")), service
        assert bool(research) == (service in ("anonymisation", "metadata", "materialiser")), service
        if clinical:
            assert clinical == {"EUCAIM_CLINICAL_ORTHANC_URL": "http://127.0.0.1:18042",
                                "EUCAIM_CLINICAL_ORTHANC_USERNAME": "eucaim-clinical",
                                "EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE": str(tmp_path / "secrets" / "orthanc-clinical-password")}
        if research:
            assert research == {"EUCAIM_RESEARCH_ORTHANC_URL": "http://127.0.0.1:18043",
                                "EUCAIM_RESEARCH_ORTHANC_USERNAME": "eucaim-research",
                                "EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE": str(tmp_path / "secrets" / "orthanc-research-password")}


def test_a_service_inherits_none_of_the_stacks_variables_from_the_shell(tmp_path: Path) -> None:
    stack = Stack(StackSettings.test_profile(state_dir=tmp_path))
    for service in SERVICE_MODULES:
        scrubbed = stack.process(service).scrub_env
        assert {"EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE", "EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE",
                "EUCAIM_HMAC_KEY_FILE", "EUCAIM_AUDIT_SIGNING_KEY_FILE"} <= scrubbed, service
        assert "EUCAIM_COLLECTIONS_FILE" not in scrubbed  # not the stack's: an operator may set it


def test_the_witness_inherits_none_of_the_nodes_variables_from_the_shell(tmp_path: Path) -> None:
    """The witness is another party: a shell that sourced node.env must not hand it the node's secret files."""
    stack = Stack(StackSettings.test_profile(state_dir=tmp_path))
    scrubbed = stack.process("witness").scrub_env
    assert {"EUCAIM_HMAC_KEY_FILE", "EUCAIM_AUDIT_SIGNING_KEY_FILE", "EUCAIM_MONGO_PASSWORD_FILE",
            "EUCAIM_KAFKA_SASL_PASSWORD_FILE", "EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE"} <= scrubbed


def test_service_env_adds_its_health_port_and_traces(tmp_path: Path) -> None:
    stack = Stack(StackSettings.test_profile(state_dir=tmp_path))
    for service in SERVICE_MODULES:
        env = stack.service_env(service)
        assert env["EUCAIM_HEALTH_PORT"] == str(StackSettings.model_fields[f"{service}_health_port"].default + 10000)
        assert env["EUCAIM_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
        assert env["EUCAIM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["EUCAIM_KAFKA_SASL_USERNAME"] == service.replace("_", "-")  # its own principal
        assert env["EUCAIM_KAFKA_SASL_PASSWORD_FILE"] == str(
            tmp_path / "secrets" / "kafka" / f"{service.replace('_', '-')}.password")
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:14318"
        assert OTEL_NAMES <= set(env)
    local = Stack(StackSettings(state_dir=tmp_path))
    assert not set(local.service_env("audit")) & OTEL_NAMES  # make up exports no traces unless asked
    assert not set(stack.node_env()) & (OTEL_NAMES | {"EUCAIM_HEALTH_PORT"})
    with pytest.raises(KeyError):
        stack.service_env("kafka")


def test_env_file_round_trip() -> None:
    env = {"A": "plain", "B": "/path/with space", "C": 'quote"d', "D": ""}
    text = configs.format_env_file(env, "header line")
    assert text.startswith("# header line\n")
    assert "A=plain\n" in text
    assert configs.parse_env_file(text) == env


def test_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    s = StackSettings.test_profile(state_dir=tmp_path)
    ensure_secrets(s)
    key_file = configs.hmac_key_file(s)
    password_files = [configs.orthanc_password_file(s, instance) for instance in ("clinical", "research")]
    key = key_file.read_bytes()
    passwords = [read_orthanc_password(s, instance) for instance in ("clinical", "research")]
    assert len(key) == 32
    assert all(len(password) >= 24 for password in passwords)
    assert passwords[0] != passwords[1]  # each Orthanc its own password
    for path in (key_file, *password_files):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    ensure_secrets(s)
    assert key_file.read_bytes() == key
    assert [read_orthanc_password(s, instance) for instance in ("clinical", "research")] == passwords


def test_status_without_anything_running(tmp_path: Path) -> None:
    ports = {field: getattr(StackSettings(), field) + 30000 for field in PORT_FIELDS}  # nothing listens there
    stack = Stack(StackSettings.test_profile(state_dir=tmp_path, **ports))
    statuses = stack.status()
    assert list(statuses) == ["kafka", "ferretdb", "orthanc-clinical", "orthanc-research", "witness", *SERVICE_MODULES]
    for name, status in statuses.items():
        assert status.pid is None and not status.healthy and not status.running
        assert status.log == str(tmp_path / "logs" / f"{name}.log")
        assert status.endpoints
    assert statuses["orthanc-clinical"].endpoints["dicom"] == "CLINICAL@127.0.0.1:34242"
    assert stack.log_path("audit") == tmp_path / "logs" / "audit.log"


def test_the_search_token_is_generated_once_0600_and_given_to_catalogue_sync_only(tmp_path: Path) -> None:
    from eucaim_node.settings import read_tokens

    stack = Stack(StackSettings.test_profile(state_dir=tmp_path))
    ensure_secrets(stack.settings)
    path = stack.search_token_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = stack.search_token()
    assert read_tokens(path) == {token: "local"} and len(token) >= 32
    ensure_secrets(stack.settings)
    assert stack.search_token() == token
    holders = [s for s in SERVICE_MODULES if "EUCAIM_SEARCH_TOKEN_FILE" in stack.service_env(s)]
    assert holders == ["catalogue_sync"]
    assert stack.service_env("catalogue_sync")["EUCAIM_SEARCH_TOKEN_FILE"] == str(path)
    assert "EUCAIM_SEARCH_TOKEN_FILE" not in configs.render_node_env(stack.settings)  # not in the CLI's node.env
