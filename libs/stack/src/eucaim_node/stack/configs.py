"""Pure rendering of every generated file: Kafka properties, Orthanc JSON, the services' node.env.

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

from .settings import SERVICE_MODULES, StackSettings, find_repo_root

ORTHANC_INSTANCES: tuple[str, ...] = ("clinical", "research")


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


def orthanc_password_file(settings: StackSettings) -> Path:
    return secrets_dir(settings) / "orthanc-password"


def search_token_file(settings: StackSettings) -> Path:
    """Clients of the federated search, ``name:token`` per line (EUCAIM_SEARCH_TOKEN_FILE); catalogue-sync only."""
    return secrets_dir(settings) / "search-tokens"


def logs_dir(settings: StackSettings) -> Path:
    return settings.state / "logs"


def node_env_file(settings: StackSettings) -> Path:
    return settings.state / "node.env"


# -- Kafka ------------------------------------------------------------------------------------------------------

def render_kafka_properties(settings: StackSettings, log_dir: Path) -> str:
    template = Template((deploy_dir() / "kafka" / "server.properties.template").read_text(encoding="utf-8"))
    return template.substitute(
        host=settings.host,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dir=str(log_dir),
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
            "RegisteredUsers": {settings.orthanc_username: password},
            "UnknownSopClassAccepted": True,
            "DicomCheckCalledAet": False,
            "OverwriteInstances": True,
        }
    )
    return config


# -- the services' environment ----------------------------------------------------------------------------------

def render_node_env(settings: StackSettings) -> dict[str, str]:
    """The settings contract of the five services (without EUCAIM_HEALTH_PORT, which is per service)."""
    password_file = str(orthanc_password_file(settings))
    return {
        "EUCAIM_KAFKA_BOOTSTRAP_SERVERS": f"{settings.host}:{settings.kafka_port}",
        "EUCAIM_MONGO_URL": f"mongodb://{settings.host}:{settings.ferretdb_port}/",
        "EUCAIM_MONGO_DATABASE": settings.mongo_database,
        "EUCAIM_CLINICAL_ORTHANC_URL": orthanc_url(settings, "clinical"),
        "EUCAIM_CLINICAL_ORTHANC_USERNAME": settings.orthanc_username,
        "EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE": password_file,
        "EUCAIM_RESEARCH_ORTHANC_URL": orthanc_url(settings, "research"),
        "EUCAIM_RESEARCH_ORTHANC_USERNAME": settings.orthanc_username,
        "EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE": password_file,
        "EUCAIM_HMAC_KEY_FILE": str(hmac_key_file(settings)),
        "EUCAIM_SITE_PREFIX": settings.site_prefix,
        # The audit ledger's Ed25519 key: the audit service creates it on first start (locally only;
        # in production the key is provisioned and generation stays off).
        "EUCAIM_AUDIT_SIGNING_KEY_FILE": str(audit_signing_key_file(settings)),
        "EUCAIM_AUDIT_SIGNING_KEY_GENERATE": "true",
        "EUCAIM_AUDIT_LOG_ORIGIN": f"{settings.name}.eucaim-node/audit",
    }


def search_env(settings: StackSettings) -> dict[str, str]:
    """catalogue-sync's federated search: on and authenticated, as in production (the token file is generated)."""
    return {"EUCAIM_SEARCH_TOKEN_FILE": str(search_token_file(settings))}


def render_service_env(settings: StackSettings, service: str) -> dict[str, str]:
    if service not in SERVICE_MODULES:
        raise KeyError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_MODULES)}")
    env = {**render_node_env(settings), "EUCAIM_HEALTH_PORT": str(settings.health_port(service))}
    if service == "catalogue_sync":
        env.update(search_env(settings))
    if settings.export_traces:
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{settings.host}:{settings.otlp_port}",
                    "OTEL_EXPORTER_OTLP_TIMEOUT": "2", "OTEL_BSP_SCHEDULE_DELAY": "1000"})
    return env


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
