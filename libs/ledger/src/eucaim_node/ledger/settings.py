"""Settings shared by the audit service and ``eucaim-node audit`` (env prefix ``EUCAIM_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eucaim_node.runtime import KafkaSettings
from eucaim_node.store import MongoSettings


class LedgerSettings(KafkaSettings, MongoSettings):
    """Where the ledger is and who signs it."""

    audit_log_origin: str = Field(
        default="eucaim-node/audit", pattern=r"^[\x21-\x7e]{1,128}$",
        description="Name of this node's audit log in its signed tree heads (unique per node, e.g. <host>/audit).")
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 private key (PEM, PKCS#8) signing tree heads; without it heads are not signed.")
    audit_signing_key_generate: bool = Field(
        default=False, description="Create the signing key file if it is missing (otherwise a missing file is an error).")
