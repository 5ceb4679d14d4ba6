"""docker-compose.yml cannot run here (no Docker engine); check it against the code instead.

Every service in the compose file must run an existing service module, set only variables
its settings class knows, provide every variable it requires, and mount every secret file
it points to. Infrastructure must be the real products (Kafka in KRaft mode, MongoDB, Orthanc).
"""

import importlib
import importlib.util
from pathlib import Path

import pytest
import yaml

from eucaim_node.anonymisation.config import AnonymisationSettings
from eucaim_node.audit.config import AuditSettings
from eucaim_node.catalogue_sync.config import CatalogueSyncSettings
from eucaim_node.metadata.config import MetadataSettings
from eucaim_node.reception.config import ReceptionSettings
from eucaim_node.runtime.settings import ENV_PREFIX

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = {
    "reception": ("eucaim_node.reception", ReceptionSettings),
    "anonymisation": ("eucaim_node.anonymisation", AnonymisationSettings),
    "metadata": ("eucaim_node.metadata", MetadataSettings),
    "catalogue-sync": ("eucaim_node.catalogue_sync", CatalogueSyncSettings),
    "audit": ("eucaim_node.audit", AuditSettings),
}


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_an_existing_module_from_the_repository_image(name):
    module, _ = SERVICES[name]
    service = COMPOSE["services"][name]
    assert service["command"] == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None
    assert service["build"] == "." and service["read_only"] is True


@pytest.mark.parametrize("name", SERVICES)
def test_service_environment_matches_its_settings_class(name, tmp_path):
    _, settings_cls = SERVICES[name]
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


@pytest.mark.parametrize("name", SERVICES)
def test_secret_files_are_mounted_secrets(name):
    service = COMPOSE["services"][name]
    mounted = {s if isinstance(s, str) else s.get("target", s["source"]) for s in service.get("secrets", [])}
    for key, value in env_of(service).items():
        if key.endswith("_FILE"):
            assert value.startswith("/run/secrets/") and value.removeprefix("/run/secrets/") in mounted, key
    for secret in mounted:
        assert secret in COMPOSE["secrets"] or any(
            isinstance(s, dict) and s.get("target") == secret for s in service["secrets"])


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
        has_key = "EUCAIM_HMAC_KEY_FILE" in env
        assert has_key == (name in ("reception", "anonymisation")), name


def test_the_search_is_on_with_a_token_secret_for_catalogue_sync_only():
    holders = [name for name in SERVICES if "EUCAIM_SEARCH_TOKEN_FILE" in env_of(COMPOSE["services"][name])]
    assert holders == ["catalogue-sync"]
    assert "search-tokens" in COMPOSE["services"]["catalogue-sync"]["secrets"]
    assert COMPOSE["secrets"]["search-tokens"]["file"] == "deploy/compose/secrets/search-tokens"
    assert "search-tokens" in (ROOT / "deploy" / "compose" / "make-secrets.sh").read_text()
