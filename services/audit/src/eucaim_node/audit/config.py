"""Settings of the audit service (env prefix ``EUCAIM_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eucaim_node.ledger.settings import LedgerSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings


class AuditSettings(ServiceSettings, KafkaSettings, LedgerSettings):
    audit_head_interval_seconds: float = Field(
        default=60.0, gt=0, le=86400, description="How often a new signed tree head is made (if records were appended).")
    audit_syslog_host: str | None = Field(
        default=None, description="ATNA audit record repository (syslog over TLS, RFC 5425); forwarding is off without it.")
    audit_syslog_port: int = Field(default=6514, ge=1, le=65535)
    audit_syslog_ca_file: Path | None = Field(default=None, description="CA bundle the repository's certificate is checked against.")
    audit_syslog_cert_file: Path | None = Field(default=None, description="Client certificate (PEM) for mutual TLS.")
    audit_syslog_key_file: Path | None = Field(default=None, description="Client private key (PEM) for mutual TLS.")
    audit_syslog_server_name: str | None = Field(default=None, description="TLS server name if not the host.")
