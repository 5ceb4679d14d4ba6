"""Pure rendering of every generated file: Kafka properties, Orthanc JSON, each service's environment.

No I/O except reading the templates in ``deploy/local`` (and, in the writers at the bottom, writing files).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from string import Template
from typing import Any

from eucaim_node.store import access

from .settings import SERVICE_MODULES, Modality, StackSettings, find_repo_root

ORTHANC_INSTANCES: tuple[str, ...] = ("clinical", "research")

#: The operator's ``eucaim-node`` CLI: it gets an environment of its own (``node.env``), like a service.
OPERATOR_CLI = "cli"
#: Everything the stack renders an environment for.
ENV_SUBJECTS: tuple[str, ...] = (*SERVICE_MODULES, OPERATOR_CLI)


def deploy_dir() -> Path:
    root = find_repo_root()
    if root is None or not (root / "deploy" / "local").is_dir():
        raise FileNotFoundError("cannot find deploy/local (run from the eucaim-node repository)")
    return root / "deploy" / "local"


# -- layout of the state dir ----------------------------------------------------------------------------------

def secrets_dir(settings: StackSettings) -> Path:
    return settings.state / "secrets"


def hmac_key_file(settings: StackSettings) -> Path:
    return secrets_dir(settings) / "hmac.key"


def audit_signing_key_file(settings: StackSettings) -> Path:
    return secrets_dir(settings) / "audit-signing.key"


def orthanc_password_file(settings: StackSettings, instance: str) -> Path:
    """Each Orthanc's own password: the research one never opens the clinical Orthanc, nor the reverse."""
    if instance not in ORTHANC_INSTANCES:
        raise ValueError(f"unknown Orthanc instance {instance!r}")
    return secrets_dir(settings) / f"orthanc-{instance}-password"


def search_token_file(settings: StackSettings) -> Path:
    """Clients of the federated search, ``name:token`` per line (EUCAIM_SEARCH_TOKEN_FILE); catalogue-sync only."""
    return secrets_dir(settings) / "search-tokens"


def jobs_token_file(settings: StackSettings) -> Path:
    """Clients of the Jobman API (the FEM client), ``name:token`` per line (EUCAIM_JOBS_TOKEN_FILE); the job service only."""
    return secrets_dir(settings) / "jobs-tokens"


def jobs_review_token_file(settings: StackSettings) -> Path:
    """Data holders who release job outputs (EUCAIM_JOBS_REVIEW_TOKEN_FILE): the job service and the operator's CLI."""
    return secrets_dir(settings) / "jobs-review-tokens"


def jobs_work_dir(settings: StackSettings) -> Path:
    """Per-job directories: sandbox, log, released copies."""
    return settings.state / "jobs"


#: The local FerretDB's first user (created by FerretDB itself on an empty database): it creates the others.
MONGO_ADMIN = "admin"


def mongo_password_file(settings: StackSettings, principal: str) -> Path:
    """The password of one MongoDB principal (a service, ``cli``, or :data:`MONGO_ADMIN`)."""
    return secrets_dir(settings) / f"mongo-{principal.replace('_', '-')}-password"


def ca_file(settings: StackSettings) -> Path:
    """The local stack's CA certificate (what clients of its TLS servers trust)."""
    return secrets_dir(settings) / "ca.pem"


def witness_token_file(settings: StackSettings) -> Path:
    """Bearer token of submissions to the witness: the audit service (and the CLI) present it."""
    return secrets_dir(settings) / "witness-token"


def witness_dir(settings: StackSettings) -> Path:
    """The witness's own state dir: its key, its SQLite file, the logs it witnesses (nothing of the node's)."""
    return settings.state / "witness"


def audit_log_public_key_file(settings: StackSettings) -> Path:
    """The ledger's public key (PEM), a trust anchor of `audit verify` kept apart from the node's database."""
    return settings.state / "audit-log.pub"


def audit_log_origin(settings: StackSettings) -> str:
    return f"{settings.name}.eucaim-node/audit"


def logs_dir(settings: StackSettings) -> Path:
    return settings.state / "logs"


def node_env_file(settings: StackSettings) -> Path:
    return settings.state / "node.env"


# -- Kafka ------------------------------------------------------------------------------------------------------

def render_kafka_properties(settings: StackSettings, log_dir: Path, security: dict[str, str]) -> str:
    """server.properties; ``security`` fills the TLS and SASL placeholders (see kafka_security.broker_security)."""
    template = Template((deploy_dir() / "kafka" / "server.properties.template").read_text(encoding="utf-8"))
    return template.substitute(
        host=settings.host,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dir=str(log_dir),
        **security,
    )


def new_kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not value.startswith("-"):
            return value


def kafka_command(settings: StackSettings, libs: Path, properties: Path, log4j: Path) -> list[str]:
    return [
        "java",
        f"-Xms{settings.kafka_heap_min}",
        f"-Xmx{settings.kafka_heap_max}",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(properties),
    ]


# -- Orthanc ----------------------------------------------------------------------------------------------------

def orthanc_http_port(settings: StackSettings, instance: str) -> int:
    return int(getattr(settings, f"{instance}_http_port"))


def orthanc_dicom_port(settings: StackSettings, instance: str) -> int:
    return int(getattr(settings, f"{instance}_dicom_port"))


def orthanc_aet(settings: StackSettings, instance: str) -> str:
    return str(getattr(settings, f"{instance}_aet"))


def orthanc_url(settings: StackSettings, instance: str) -> str:
    return f"http://{settings.host}:{orthanc_http_port(settings, instance)}"


def orthanc_dir(settings: StackSettings, instance: str) -> Path:
    return settings.state / f"orthanc-{instance}"


def orthanc_username(settings: StackSettings, instance: str) -> str:
    return str(getattr(settings, f"{instance}_orthanc_username"))


def orthanc_modalities(modalities: tuple[Modality, ...]) -> dict[str, dict[str, Any]]:
    """Orthanc's ``DicomModalities``: each allowed modality may C-ECHO and C-STORE, nothing else (no C-FIND,
    C-MOVE, C-GET or storage commitment: a modality sends images, it does not query the clinical archive)."""
    return {
        f"allowed-{number}": {"AET": m.aet, "Host": m.host, "Port": m.port, "AllowEcho": True, "AllowStore": True,
                              "AllowFind": False, "AllowMove": False, "AllowGet": False,
                              "AllowStorageCommitment": False}
        for number, m in enumerate(modalities, 1)
    }


def orthanc_dicom_security(instance: str, modalities: tuple[Modality, ...]) -> dict[str, Any]:
    """The DICOM part of an Orthanc's configuration (Orthanc Book, "Security" FAQ; checked with Orthanc 1.10.1).

    The research Orthanc runs no DICOM server: only anonymisation writes there, over HTTP. The clinical Orthanc
    rejects the association of a calling AE title that is not listed (``DicomAlwaysAllowEcho`` and
    ``DicomAlwaysAllowStore`` false), of a listed one from another address (``DicomCheckModalityHost``) and of
    a called AE title other than its own (``DicomCheckCalledAet``). Orthanc 1.10 listens on every interface
    (it has no bind option): these checks, not the address, protect the DICOM port.
    """
    if instance not in ORTHANC_INSTANCES:
        raise ValueError(f"unknown Orthanc instance {instance!r}")
    return {
        "DicomServerEnabled": instance == "clinical",
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": orthanc_modalities(modalities) if instance == "clinical" else {},
    }


def render_orthanc_config(settings: StackSettings, instance: str, password: str) -> dict[str, Any]:
    """The JSON configuration of one Orthanc instance ('clinical' or 'research')."""
    if instance not in ORTHANC_INSTANCES:
        raise ValueError(f"unknown Orthanc instance {instance!r}")
    config: dict[str, Any] = json.loads((deploy_dir() / "orthanc" / "orthanc.base.json").read_text("utf-8"))
    base = orthanc_dir(settings, instance)
    config.update(
        {
            "Name": f"eucaim-{settings.name}-{instance}",
            "StorageDirectory": str(base / "storage"),
            "IndexDirectory": str(base / "index"),
            "HttpPort": orthanc_http_port(settings, instance),
            "DicomPort": orthanc_dicom_port(settings, instance),
            "DicomAet": orthanc_aet(settings, instance),
            "StableAge": settings.stable_age,
            "AuthenticationEnabled": True,
            "RemoteAccessAllowed": settings.orthanc_remote_access,
            "RegisteredUsers": {orthanc_username(settings, instance): password},
            "UnknownSopClassAccepted": True,
            "OverwriteInstances": True,
            **orthanc_dicom_security(instance, settings.clinical_modalities),
        }
    )
    return config


# -- each service's environment ---------------------------------------------------------------------------------
# A service gets only what its settings class declares and needs: the environment is the merge of the small
# functions below, each one concern, each deciding who gets it (tests/test_service_env.py derives the expectation
# from the settings classes). Add a concern as one more function in SERVICE_ENV_PARTS.

#: Who reaches which Orthanc: only these receive its URL and credentials (docs/security.md).
CLINICAL_ORTHANC_CLIENTS: tuple[str, ...] = ("reception", "anonymisation")
RESEARCH_ORTHANC_CLIENTS: tuple[str, ...] = ("anonymisation", "metadata", "materialiser")
#: Who sees the dataset root: the materialiser writes it; the CLI reads it (``dataset verify``).
DATASET_ROOT_CLIENTS: tuple[str, ...] = ("materialiser", "jobs", OPERATOR_CLI)
#: Who holds the node's HMAC key: the services that make pseudonyms, and the CLI (``withdraw --patient-id``).
PSEUDONYM_KEY_HOLDERS: tuple[str, ...] = ("reception", "anonymisation", OPERATOR_CLI)
#: Who reads the audit ledger's settings: the audit service (signs) and the CLI (``audit verify|prove|export``).
LEDGER_CLIENTS: tuple[str, ...] = ("audit", OPERATOR_CLI)


def kafka_env(settings: StackSettings, service: str) -> dict[str, str]:
    """SASL_SSL as its own principal: the service's, or the operator's for the CLI (decision 0060)."""
    from eucaim_node.events import OPERATOR

    from .kafka_security import kafka_env as principal_env, service_principal

    return principal_env(settings, OPERATOR if service == OPERATOR_CLI else service_principal(service))


def mongo_env(settings: StackSettings, service: str) -> dict[str, str]:
    """MongoDB settings of one service (or ``cli``, or :data:`MONGO_ADMIN`): its own user and password file, TLS."""
    return {"EUCAIM_MONGO_URL": f"mongodb://{settings.host}:{settings.ferretdb_port}/",
            "EUCAIM_MONGO_DATABASE": settings.mongo_database,
            "EUCAIM_MONGO_USERNAME": mongo_username(service),
            "EUCAIM_MONGO_PASSWORD_FILE": str(mongo_password_file(settings, service)),
            "EUCAIM_MONGO_TLS_CA_FILE": str(ca_file(settings))}


def mongo_username(principal: str) -> str:
    return "eucaim-admin" if principal == MONGO_ADMIN else access.mongo_username(principal)


def orthanc_env(settings: StackSettings, instance: str) -> dict[str, str]:
    """URL, user and password file of one Orthanc, as ``Clinical|ResearchOrthancSettings`` read them."""
    prefix = f"EUCAIM_{instance.upper()}_ORTHANC"
    return {f"{prefix}_URL": orthanc_url(settings, instance),
            f"{prefix}_USERNAME": orthanc_username(settings, instance),
            f"{prefix}_PASSWORD_FILE": str(orthanc_password_file(settings, instance))}


def clinical_orthanc_env(settings: StackSettings, service: str) -> dict[str, str]:
    return orthanc_env(settings, "clinical") if service in CLINICAL_ORTHANC_CLIENTS else {}


def research_orthanc_env(settings: StackSettings, service: str) -> dict[str, str]:
    return orthanc_env(settings, "research") if service in RESEARCH_ORTHANC_CLIENTS else {}


def pseudonym_env(settings: StackSettings, service: str) -> dict[str, str]:
    if service not in PSEUDONYM_KEY_HOLDERS:
        return {}
    return {"EUCAIM_HMAC_KEY_FILE": str(hmac_key_file(settings)), "EUCAIM_SITE_PREFIX": settings.site_prefix}


def ledger_env(settings: StackSettings, service: str) -> dict[str, str]:
    if service not in LEDGER_CLIENTS:
        return {}
    # The audit ledger's Ed25519 key: the audit service creates it on first start (locally only;
    # in production the key is provisioned and generation stays off).
    return {"EUCAIM_AUDIT_SIGNING_KEY_FILE": str(audit_signing_key_file(settings)),
            "EUCAIM_AUDIT_SIGNING_KEY_GENERATE": "true",
            "EUCAIM_AUDIT_LOG_ORIGIN": audit_log_origin(settings),
            **witness_client_env(settings)}


def search_env(settings: StackSettings, service: str) -> dict[str, str]:
    """catalogue-sync's federated search: on and authenticated, as in production (the token file is generated).
    Not the CLI's: ``eucaim-node search`` reads the database directly; the token is for remote clients."""
    return {"EUCAIM_SEARCH_TOKEN_FILE": str(search_token_file(settings))} if service == "catalogue_sync" else {}


def datasets_root(settings: StackSettings) -> Path:
    return settings.state / "datasets"


def dataset_env(settings: StackSettings, service: str) -> dict[str, str]:
    return {"EUCAIM_DATASET_ROOT": str(datasets_root(settings))} if service in DATASET_ROOT_CLIENTS else {}


def jobs_env(settings: StackSettings, service: str) -> dict[str, str]:
    """The job service's API tokens, tool allow-list, flavours, and where datasets and jobs live."""
    if service != "jobs":
        return {}
    # A job must not see the node's state (secrets, databases, Orthanc storage): it runs in namespaces where these
    # directories are empty; its datasets and its sandbox are mounted in before they are hidden.
    hidden = [settings.state, settings.cache_dir]
    return {"EUCAIM_JOBS_TOKEN_FILE": str(jobs_token_file(settings)),
            "EUCAIM_JOBS_REVIEW_TOKEN_FILE": str(jobs_review_token_file(settings)),
            "EUCAIM_JOBS_WORK_DIR": str(jobs_work_dir(settings)),
            "EUCAIM_JOBS_TOOLS_FILE": str(deploy_dir() / "jobs" / "tools.json"),
            "EUCAIM_JOBS_FLAVOURS_FILE": str(deploy_dir() / "jobs" / "flavours.json"),
            "EUCAIM_JOBS_LOCAL_HIDE_PATHS": ",".join(str(p) for p in hidden)}


def job_review_env(settings: StackSettings, service: str) -> dict[str, str]:
    """The CLI's ``eucaim-node job ...`` reaches the job service's review API with a data holder's token."""
    if service != OPERATOR_CLI:
        return {}
    return {"EUCAIM_JOBS_URL": f"http://{settings.host}:{settings.jobs_health_port}",
            "EUCAIM_JOBS_REVIEW_TOKEN_FILE": str(jobs_review_token_file(settings))}


def health_env(settings: StackSettings, service: str) -> dict[str, str]:
    return {} if service == OPERATOR_CLI else {"EUCAIM_HEALTH_PORT": str(settings.health_port(service))}


def tracing_env(settings: StackSettings, service: str) -> dict[str, str]:
    if service == OPERATOR_CLI or not settings.export_traces:
        return {}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{settings.host}:{settings.otlp_port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2", "OTEL_BSP_SCHEDULE_DELAY": "1000"}


#: The parts of every environment, merged in this order.
SERVICE_ENV_PARTS = (
    kafka_env,
    mongo_env,
    clinical_orthanc_env,
    research_orthanc_env,
    pseudonym_env,
    ledger_env,
    search_env,
    dataset_env,
    jobs_env,
    job_review_env,
    health_env,
    tracing_env,
)


# -- the audit ledger's witness ---------------------------------------------------------------------------------

def witness_url(settings: StackSettings) -> str:
    return f"http://{settings.host}:{settings.witness_port}"


def render_witness_env(settings: StackSettings) -> dict[str, str]:
    """The witness process's environment: its own key (created on first start), state dir and logs file."""
    home = witness_dir(settings)
    return {
        "EUCAIM_WITNESS_NAME": f"{settings.name}.witness.eucaim-node",
        "EUCAIM_WITNESS_KEY_FILE": str(home / "witness.key"),
        "EUCAIM_WITNESS_KEY_GENERATE": "true",
        "EUCAIM_WITNESS_VKEY_FILE": str(home / "witness.vkey"),
        "EUCAIM_WITNESS_LOGS_FILE": str(home / "logs.txt"),
        "EUCAIM_WITNESS_STATE_DIR": str(home / "state"),
        "EUCAIM_WITNESS_SUBMIT_TOKEN_FILE": str(witness_token_file(settings)),
        "EUCAIM_WITNESS_HOST": settings.host,
        "EUCAIM_WITNESS_PORT": str(settings.witness_port),
    }


def witness_client_env(settings: StackSettings) -> dict[str, str]:
    """What the audit service and the operator's CLI need to submit heads to, and verify against, the witness."""
    return {
        "EUCAIM_AUDIT_WITNESS_URL": witness_url(settings),
        "EUCAIM_AUDIT_WITNESS_VKEY_FILE": str(witness_dir(settings) / "witness.vkey"),
        "EUCAIM_AUDIT_WITNESS_TOKEN_FILE": str(witness_token_file(settings)),
        "EUCAIM_AUDIT_LOG_PUBLIC_KEY_FILE": str(audit_log_public_key_file(settings)),
    }


def render_service_env(settings: StackSettings, service: str) -> dict[str, str]:
    """The environment of one service (or of the operator's CLI, :data:`OPERATOR_CLI`): only what it needs."""
    if service not in ENV_SUBJECTS:
        raise KeyError(f"unknown service {service!r}; expected one of {', '.join(ENV_SUBJECTS)}")
    env: dict[str, str] = {}
    for part in SERVICE_ENV_PARTS:
        env.update(part(settings, service))
    return env


def stack_env_names(settings: StackSettings) -> frozenset[str]:
    """Every variable the stack sets for some service or the CLI: the stack's alone (never from the shell)."""
    return frozenset(name for subject in ENV_SUBJECTS for name in render_service_env(settings, subject))


def render_node_env(settings: StackSettings) -> dict[str, str]:
    """The operator CLI's environment, written to ``node.env`` (``--env-file``): no Orthanc credentials."""
    return render_service_env(settings, OPERATOR_CLI)


def _env_value(value: str) -> str:
    if value and all(ch.isalnum() or ch in "/._-:@+,=" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_env_file(env: dict[str, str], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={_env_value(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    """Inverse of :func:`format_env_file` (KEY=value lines, '#' comments, double quotes)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        env[key.strip()] = value
    return env


# -- writers ----------------------------------------------------------------------------------------------------

def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write ``data`` atomically to a file only the owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    tmp.replace(path)


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            os.chmod(path, mode)
            return False
    except FileNotFoundError:
        pass
    write_private(path, text, mode)
    return True
