"""docker-compose.yml cannot run here (no Docker engine); check it against the code instead.

Every service in the compose file must run an existing service module, set only variables
its settings class knows, provide every variable it requires, mount every secret file it
points to and no other secret. Only reception and anonymisation get the clinical Orthanc's
credential. Infrastructure must be the real products (Kafka in KRaft mode, MongoDB, Orthanc);
the research Orthanc runs no DICOM server, the clinical one admits only listed modalities.
"""

import importlib
import importlib.util
import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from eucaim_node.anonymisation.config import AnonymisationSettings
from eucaim_node.audit.config import AuditSettings
from eucaim_node.catalogue_sync.config import CatalogueSyncSettings
from eucaim_node.materialiser.config import MaterialiserSettings
from eucaim_node.metadata.config import MetadataSettings
from eucaim_node.reception.config import ReceptionSettings
from eucaim_node.events import KAFKA_GRANTS
from eucaim_node.runtime.settings import ENV_PREFIX
from eucaim_node.stack.configs import orthanc_dicom_security
from eucaim_node.stack.settings import Modality
from eucaim_node.witness.config import WitnessSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = {
    "reception": ("eucaim_node.reception", ReceptionSettings),
    "anonymisation": ("eucaim_node.anonymisation", AnonymisationSettings),
    "metadata": ("eucaim_node.metadata", MetadataSettings),
    "catalogue-sync": ("eucaim_node.catalogue_sync", CatalogueSyncSettings),
    "audit": ("eucaim_node.audit", AuditSettings),
    "materialiser": ("eucaim_node.materialiser", MaterialiserSettings),
}
#: Everything built from the repository's image: the five services and the audit ledger's witness.
COMPONENTS = {**SERVICES, "witness": ("eucaim_node.witness", WitnessSettings)}


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


@pytest.mark.parametrize("name", COMPONENTS)
def test_service_runs_an_existing_module_from_the_repository_image(name):
    module, _ = COMPONENTS[name]
    service = COMPOSE["services"][name]
    assert service["command"] == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None
    assert service["build"] == "." and service["read_only"] is True


@pytest.mark.parametrize("name", COMPONENTS)
def test_service_environment_matches_its_settings_class(name, tmp_path):
    _, settings_cls = COMPONENTS[name]
    env = env_of(COMPOSE["services"][name])
    known = {ENV_PREFIX + field.upper() for field in settings_cls.model_fields}
    required = {ENV_PREFIX + f.upper() for f, info in settings_cls.model_fields.items() if info.is_required()}
    assert set(env) <= known, f"unknown variables: {set(env) - known}"
    assert required <= set(env), f"missing variables: {required - set(env)}"
    # The values must validate: build the settings from exactly this environment, with the
    # secret files (which exist only on a Docker host) replaced by a local stand-in file.
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 32)
    values = {k.removeprefix(ENV_PREFIX).lower(): (str(secret) if k.endswith("_FILE") else v) for k, v in env.items()}
    settings_cls.model_validate(values)


def mounted_secrets(service: dict) -> dict[str, str]:
    """Path under /run/secrets → the compose secret mounted there."""
    mounts = {}
    for entry in service.get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        target = entry if isinstance(entry, str) else entry.get("target", source)
        mounts[target] = source
    return mounts


@pytest.mark.parametrize("name", COMPONENTS)
def test_each_service_mounts_exactly_the_secrets_its_settings_point_to(name):
    service = COMPOSE["services"][name]
    mounted = mounted_secrets(service)
    referenced = set()
    for key, value in env_of(service).items():
        if key.endswith("_FILE"):
            assert value.startswith("/run/secrets/") and value.removeprefix("/run/secrets/") in mounted, key
            referenced.add(value.removeprefix("/run/secrets/"))
    assert set(mounted) == referenced, f"{name} mounts secrets no setting uses: {set(mounted) - referenced}"
    assert all(source in COMPOSE["secrets"] for source in mounted.values())


@pytest.mark.parametrize("name", ["metadata", "catalogue-sync", "audit"])
def test_no_clinical_credential_outside_reception_and_anonymisation(name):
    service = COMPOSE["services"][name]
    assert not [k for k in env_of(service) if k.startswith("EUCAIM_CLINICAL_ORTHANC")], name
    clinical_files = {s["file"] for n, s in COMPOSE["secrets"].items() if "clinical" in n}
    assert clinical_files and not {COMPOSE["secrets"][source]["file"] for source in mounted_secrets(service).values()} & clinical_files


def test_each_orthanc_has_its_own_users_and_its_clients_their_own_password():
    services = COMPOSE["services"]
    users = {orthanc: COMPOSE["secrets"][mounted_secrets(services[f"orthanc-{orthanc}"])["ORTHANC__REGISTERED_USERS"]]["file"]
             for orthanc in ("clinical", "research")}
    assert users["clinical"] != users["research"]
    anonymisation = env_of(services["anonymisation"])
    assert anonymisation["EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE"] != anonymisation["EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE"]
    assert anonymisation["EUCAIM_CLINICAL_ORTHANC_USERNAME"] != anonymisation["EUCAIM_RESEARCH_ORTHANC_USERNAME"]
    script = (ROOT / "deploy" / "compose" / "make-secrets.sh").read_text()
    assert "for instance in clinical research" in script and "orthanc-$instance-users.json" in script
    files = {s["file"] for s in COMPOSE["secrets"].values()}
    for instance in ("clinical", "research"):  # the files make-secrets.sh creates, one set per Orthanc
        assert {f"deploy/compose/secrets/orthanc-{instance}-password",
                f"deploy/compose/secrets/orthanc-{instance}-users.json"} <= files


def orthanc_dicom_config(name: str) -> dict:
    [mount] = [v for v in COMPOSE["services"][name]["volumes"] if v.endswith(":/etc/orthanc/eucaim-dicom.json:ro")]
    return json.loads((ROOT / mount.split(":")[0]).read_text())


def test_the_research_orthanc_runs_no_dicom_server_and_publishes_no_dicom_port():
    research = COMPOSE["services"]["orthanc-research"]
    assert orthanc_dicom_config("orthanc-research") == orthanc_dicom_security("research", ())
    assert orthanc_dicom_config("orthanc-research")["DicomServerEnabled"] is False
    assert research["ports"] == ["127.0.0.1:8043:8042"]


def test_the_clinical_orthanc_admits_only_listed_modalities_and_its_api_is_loopback_only():
    config = orthanc_dicom_config("orthanc-clinical")
    modalities = tuple(Modality(aet=m["AET"], host=m["Host"], port=m["Port"]) for m in config["DicomModalities"].values())
    assert modalities and all(ipaddress.ip_address(m.host) for m in modalities)
    assert config == orthanc_dicom_security("clinical", modalities)  # the checks of the local stack, verified there
    # The default lists the Docker host on the compose network: the gateway of its fixed subnet.
    [subnet] = COMPOSE["networks"]["default"]["ipam"]["config"]
    assert [m.host for m in modalities] == [subnet["gateway"]]
    assert COMPOSE["services"]["orthanc-clinical"]["ports"] == ["4242:4242", "127.0.0.1:8042:8042"]


def test_infrastructure_is_the_real_products():
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["mongodb"]["image"].startswith("mongo:")
    for orthanc in ("orthanc-clinical", "orthanc-research"):
        assert services[orthanc]["image"].startswith("orthancteam/orthanc:")
        assert services[orthanc]["environment"]["ORTHANC__AUTHENTICATION_ENABLED"] == "true"


def test_only_reception_and_anonymisation_are_given_the_clinical_orthanc_and_the_key():
    for name in SERVICES:
        env = env_of(COMPOSE["services"][name])
        assert ("EUCAIM_HMAC_KEY_FILE" in env) == (name in ("reception", "anonymisation")), name
        assert ("EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE" in env) == (name in ("reception", "anonymisation")), name
        assert ("EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE" in env) == (name in ("anonymisation", "metadata", "materialiser")), name


def test_the_search_is_on_with_a_token_secret_for_catalogue_sync_only():
    holders = [name for name in SERVICES if "EUCAIM_SEARCH_TOKEN_FILE" in env_of(COMPOSE["services"][name])]
    assert holders == ["catalogue-sync"]
    assert "search-tokens" in COMPOSE["services"]["catalogue-sync"]["secrets"]
    assert COMPOSE["secrets"]["search-tokens"]["file"] == "deploy/compose/secrets/search-tokens"
    assert "search-tokens" in (ROOT / "deploy" / "compose" / "make-secrets.sh").read_text()


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_its_own_mongodb_user_and_only_its_own_password(name):
    from eucaim_node.store.access import mongo_username

    service = COMPOSE["services"][name]
    env = env_of(service)
    assert env["EUCAIM_MONGO_USERNAME"] == mongo_username(name)
    assert env["EUCAIM_MONGO_PASSWORD_FILE"] == f"/run/secrets/mongo-{name}-password"
    assert env["EUCAIM_MONGO_TLS_CA_FILE"] == "/run/secrets/ca.pem" and "@" not in env["EUCAIM_MONGO_URL"]
    mongo_secrets = [s for s in service["secrets"] if str(s).startswith("mongo")]
    assert mongo_secrets == [f"mongo-{name}-password"]


def test_mongodb_requires_tls_and_authentication_and_runs_the_generated_users_script():
    from eucaim_node.store.access import PRINCIPALS

    mongodb = COMPOSE["services"]["mongodb"]
    assert mongodb["command"][:3] == ["mongod", "--tlsMode", "requireTLS"]
    assert mongodb["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"] == "/run/secrets/mongo-root-password"
    init = [v for v in mongodb["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init == ["./deploy/helm/eucaim-node/files/mongo-users.js:/docker-entrypoint-initdb.d/10-eucaim-users.js:ro"]
    assert {f"mongo-{p}-password" for p in PRINCIPALS} <= set(mongodb["secrets"])
    script = (ROOT / "deploy" / "compose" / "make-secrets.sh").read_text()
    listed = next(line for line in script.splitlines() if line.startswith("for principal in "))
    assert listed.removeprefix("for principal in ").removesuffix("; do").split() == ["root", *PRINCIPALS]


# -- Kafka: SASL_SSL, one principal per service, ACLs from the grant matrix (decision 0060) ------------------------

def test_every_service_reaches_kafka_over_sasl_ssl_as_its_own_principal():
    principals = {}
    for name in SERVICES:
        service = COMPOSE["services"][name]
        env = env_of(service)
        assert env["EUCAIM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["EUCAIM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert "EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT" not in env, name
        principals[name] = env["EUCAIM_KAFKA_SASL_USERNAME"]
        password = [s for s in service["secrets"] if isinstance(s, dict) and s["target"] == "kafka-password"]
        assert password == [{"source": f"kafka-{principals[name]}.password", "target": "kafka-password"}], name
        assert env["EUCAIM_KAFKA_SSL_CA_FILE"] == "/run/secrets/ca.pem" and "ca.pem" in service["secrets"]
        assert service["depends_on"]["kafka-setup"] == {"condition": "service_completed_successfully"}, name
    assert principals == {name: name for name in SERVICES} and set(principals.values()) <= set(KAFKA_GRANTS)


def test_the_broker_authenticates_everyone_and_denies_what_no_acl_allows():
    env = {k: str(v) for k, v in COMPOSE["services"]["kafka"]["environment"].items()}
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_SSL", "SSL"}  # no PLAINTEXT listener
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SSL_CLIENT_AUTH"] == env["KAFKA_LISTENER_NAME_INTERNAL_SSL_CLIENT_AUTH"] == "required"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false" and env["KAFKA_SUPER_USERS"] == "User:admin"


def test_kafka_provisioning_script_puts_no_password_on_a_command_line():
    """Each SCRAM password reaches kafka-configs.sh in a 0600 file (--add-config-file), never as an argument
    that `ps` shows; only the shell builtin printf sees it, writing into a private temporary directory."""
    import shlex

    script = (ROOT / "deploy" / "compose" / "kafka-provision.sh").read_text()
    lines = script.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line) for line in lines if line.strip() and not line.startswith("#")]
    for words in commands:
        assert "--add-config" not in words, "password-bearing --add-config argument: " + " ".join(words)
        if any("password" in word for word in words):
            assert words[0] == "printf" and words[-2] == ">", "a password on a command line: " + " ".join(words)
    configs = [words for words in commands if words[0].endswith("/kafka-configs.sh")]
    assert len(configs) == len(KAFKA_GRANTS) and all("--add-config-file" in words for words in configs)
    assert ["umask", "077"] in commands and ["trap", 'rm -rf "$scram_dir"', "EXIT"] in commands


def test_kafka_setup_runs_the_provisioning_script_generated_from_the_grant_matrix():
    from eucaim_node.stack.kafka_security import provision_script

    script = ROOT / "deploy" / "compose" / "kafka-provision.sh"
    assert script.read_text() == provision_script(), "stale: eucaim-node kafka provision-script > " + str(script)
    setup = COMPOSE["services"]["kafka-setup"]
    assert setup["command"] == ["sh", "/etc/eucaim/kafka-provision.sh"]
    assert {f"kafka-{p}.password" for p in KAFKA_GRANTS} <= set(setup["secrets"])
    assert "./deploy/compose/kafka-provision.sh:/etc/eucaim/kafka-provision.sh:ro" in setup["volumes"]


def test_the_witness_is_separate_from_the_node():
    """Its own volume and key; no database, no Kafka; the audit service waits for it and verifies its answers."""
    witness = COMPOSE["services"]["witness"]
    env = env_of(witness)
    assert not any(k.startswith(("EUCAIM_MONGO", "EUCAIM_KAFKA")) for k in env)
    assert witness["volumes"] == ["witness-data:/var/lib/eucaim-witness"]
    assert env["EUCAIM_WITNESS_STATE_DIR"] == "/var/lib/eucaim-witness"
    assert "audit-signing-key" not in witness["secrets"]  # the log's private key never reaches the witness
    audit = COMPOSE["services"]["audit"]
    assert audit["depends_on"]["witness"] == {"condition": "service_healthy"}
    assert env_of(audit)["EUCAIM_AUDIT_WITNESS_URL"] == f"http://witness:{env['EUCAIM_WITNESS_PORT']}"
    assert "witness-key" not in audit["secrets"]
