"""Settings of the local stack: one profile (``local`` for ``make up``, ``test`` for pytest) per state dir."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Every field that is a TCP port; the test profile shifts all of them by :data:`TEST_PORT_OFFSET`.
PORT_FIELDS: tuple[str, ...] = (
    "kafka_port",
    "kafka_controller_port",
    "ferretdb_port",
    "clinical_http_port",
    "clinical_dicom_port",
    "research_http_port",
    "research_dicom_port",
    "reception_health_port",
    "anonymisation_health_port",
    "metadata_health_port",
    "catalogue_sync_health_port",
    "audit_health_port",
    "materialiser_health_port",
    "otlp_port",
    "witness_port",
    "jobs_health_port",
)

TEST_PORT_OFFSET = 10000

#: The node services, in start order; each runs as ``python -m eucaim_node.<module>``.
SERVICE_MODULES: tuple[str, ...] = ("reception", "anonymisation", "metadata", "catalogue_sync", "audit", "materialiser",
                                   "jobs")


#: The calling AE title of the sample push (``make up``) and of the tests' storescu: the default allow-list entry.
LOCAL_MODALITY_AET = "MODALITY"

#: PS3.5 §6.2, VR AE: at most 16 characters of the default repertoire, no backslash, no control characters;
#: leading and trailing spaces are not significant, so an AE title of spaces only is none.
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
_MODALITY = re.compile(r"^(?P<aet>.+)@(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:@\[\]]+))(?::(?P<port>\d{1,5}))?$")


class Modality(BaseModel):
    """A DICOM modality allowed to C-STORE into the clinical Orthanc: its AE title and the IP address it sends from.

    Orthanc checks both (``DicomCheckModalityHost``); with that check on, its ``Host`` must be an IP address,
    not a name. ``port`` is where the modality itself listens (Orthanc needs one; only C-MOVE would use it).
    """

    model_config = ConfigDict(frozen=True)

    aet: str
    host: str
    port: int = Field(default=104, ge=1, le=65535)

    @field_validator("aet")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        if not _AE_TITLE.fullmatch(value) or not value.strip():
            raise ValueError(f"{value!r} is not an AE title (PS3.5 §6.2: 1 to 16 characters, no backslash, "
                             "no control characters, not only spaces)")
        return value.strip()

    @field_validator("host")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address (Orthanc checks the sender's address, "
                             "so a modality is listed by IP, not by name)") from None

    @classmethod
    def parse(cls, text: str) -> Modality:
        """``AET@IP`` or ``AET@IP:PORT`` (IPv6 in brackets: ``AET@[::1]:104``)."""
        match = _MODALITY.match(text.strip())
        if not match:
            raise ValueError(f"{text!r}: expected AET@IP or AET@IP:PORT")
        values: dict[str, Any] = {"aet": match["aet"], "host": match["ipv6"] or match["host"]}
        if match["port"]:
            values["port"] = int(match["port"])
        return cls(**values)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.aet}@{host}:{self.port}"


def find_repo_root(start: Path | None = None) -> Path | None:
    """The uv workspace root above ``start`` (default: this file, then the working directory)."""
    candidates = [start] if start is not None else [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for origin in candidates:
        for directory in (origin, *origin.parents):
            pyproject = directory / "pyproject.toml"
            if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text(encoding="utf-8"):
                return directory
    return None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eucaim-node"


def default_state_dir(name: str) -> Path:
    root = find_repo_root() or Path.cwd()
    return root / ".stack" / name


class StackSettings(BaseSettings):
    """Where the stack keeps its state and cache, which versions it runs and on which loopback ports."""

    model_config = SettingsConfigDict(env_prefix="EUCAIM_STACK_", extra="ignore")

    name: str = "local"
    #: Defaults to ``<repo root>/.stack/<name>``.
    state_dir: Path | None = None
    #: Defaults to ``${XDG_CACHE_HOME:-~/.cache}/eucaim-node``; shared by all profiles.
    cache_dir: Path = Field(default_factory=default_cache_dir)
    host: str = "127.0.0.1"

    kafka_version: str = "4.2.0"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap_min: str = "256m"
    kafka_heap_max: str = "512m"

    ferretdb_version: str = "v1.24.2"
    ferretdb_port: int = 27017

    clinical_http_port: int = 8042
    clinical_dicom_port: int = 4242
    clinical_aet: str = "CLINICAL"
    #: Who may C-STORE into the clinical Orthanc (comma-separated ``AET@IP[:PORT]``); nobody else can associate.
    clinical_modalities: Annotated[tuple[Modality, ...], NoDecode] = (
        Modality(aet=LOCAL_MODALITY_AET, host="127.0.0.1"),)
    research_http_port: int = 8043
    #: The research Orthanc's DICOM server is off (only anonymisation writes there, over HTTP): nothing listens
    #: on this port. It stays configured so that the port Orthanc reports is this profile's, never a default.
    research_dicom_port: int = 4243
    research_aet: str = "RESEARCH"
    #: Each Orthanc has its own user and password (``secrets/orthanc-<instance>-password``).
    clinical_orthanc_username: str = Field(default="eucaim-clinical", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    research_orthanc_username: str = Field(default="eucaim-research", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    #: Let other hosts reach the Orthancs' REST API (Orthanc's RemoteAccessAllowed; users and passwords stay on).
    #: Off: loopback clients only. The deploy check turns it on: its pods reach the Orthancs from a podman network.
    orthanc_remote_access: bool = False
    #: Seconds without a new instance before Orthanc calls a study stable.
    stable_age: int = 5

    #: Processes of each scalable service (anonymisation, metadata) that ``up`` starts: a second replica shares
    #: the consumer group (the topics' partitions are split between them) and listens on its health port + 20.
    service_replicas: int = Field(default=1, ge=1, le=2)

    reception_health_port: int = 8101
    anonymisation_health_port: int = 8102
    metadata_health_port: int = 8103
    catalogue_sync_health_port: int = 8104
    audit_health_port: int = 8105
    #: The dataset materialiser (Tier 3 datasets, docs/datasets.md).
    materialiser_health_port: int = 8107

    #: The audit ledger's witness (its own process, state dir and key; docs/audit.md).
    witness_port: int = 8106

    #: The job service: its health port also serves the Jobman API and the review API (docs/processing.md).
    jobs_health_port: int = 8108

    #: With ``export_traces``, the services send spans with OTLP/HTTP to 127.0.0.1:<otlp_port> (standard
    #: OTEL_* variables); the test profile does, for the trace test's receiver. Off for ``make up``.
    otlp_port: int = 4318
    export_traces: bool = False

    mongo_database: str = "eucaim_node"
    site_prefix: str = "EUCAIM-LOCAL"

    #: Bounded readiness waits, in seconds.
    kafka_start_timeout: float = 90.0
    ferretdb_start_timeout: float = 30.0
    orthanc_start_timeout: float = 30.0
    service_start_timeout: float = 60.0
    stop_timeout: float = 30.0

    @field_validator("clinical_modalities", mode="before")
    @classmethod
    def _modalities(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Modality.parse(item) for item in value.split(",") if item.strip())
        return value

    @model_validator(mode="after")
    def _resolve_paths(self) -> StackSettings:
        if self.state_dir is None:
            self.state_dir = default_state_dir(self.name)
        self.state_dir = Path(self.state_dir).expanduser().absolute()
        self.cache_dir = Path(self.cache_dir).expanduser().absolute()
        return self

    @property
    def state(self) -> Path:
        """The resolved state dir (never None after validation)."""
        assert self.state_dir is not None
        return self.state_dir

    def health_port(self, service: str) -> int:
        if service not in SERVICE_MODULES:
            raise KeyError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_MODULES)}")
        return int(getattr(self, f"{service}_health_port"))

    def ports(self) -> dict[str, int]:
        return {field: int(getattr(self, field)) for field in PORT_FIELDS}

    @classmethod
    def test_profile(cls, **overrides: Any) -> StackSettings:
        """The profile the pytest fixture uses: name ``test``, every default port shifted by +10000, StableAge 2.

        Ports, name and state dir come from the defaults, never from ``EUCAIM_STACK_*`` variables, so the test
        profile can never point at the state or ports of a running ``make up``; pass ``overrides`` to change them.
        """
        values: dict[str, Any] = {
            field: int(cls.model_fields[field].default) + TEST_PORT_OFFSET for field in PORT_FIELDS
        }
        values["name"] = "test"
        values["stable_age"] = 2
        values["export_traces"] = True
        values.update(overrides)
        if values.get("state_dir") is None:
            values["state_dir"] = default_state_dir(str(values["name"]))
        return cls(**values)
