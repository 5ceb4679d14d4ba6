"""Settings shared by the audit service and ``eucaim-node audit`` (env prefix ``EUCAIM_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eucaim_node.store import MongoSettings


class LedgerSettings(MongoSettings):
    """Where the ledger is and who signs it."""

    audit_log_origin: str = Field(
        default="eucaim-node/audit", pattern=r"^[\x21-\x7e]{1,128}$",
        description="Name of this node's audit log in its signed tree heads (unique per node, e.g. <host>/audit).")
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 private key (PEM, PKCS#8) signing tree heads; without it heads are not signed.")
    audit_signing_key_generate: bool = Field(
        default=False, description="Create the signing key file if it is missing (otherwise a missing file is an error).")
    # The witness (docs/audit.md, decision 0055). Its key and the log's public key are trust anchors read
    # from files: `audit verify` never takes them from the node's database.
    audit_witness_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Base URL of the witness (its POST /add-checkpoint and GET /checkpoint).")
    audit_witness_vkey_file: Path | None = Field(
        default=None, description="The witness's verifier key (name+id+base64(0x04||key)), obtained out of band.")
    audit_witness_token_file: Path | None = Field(
        default=None, description="Bearer token for submitting checkpoints to the witness (audit service, `audit head --sign`).")
    audit_witness_ca_file: Path | None = Field(
        default=None, description="CA bundle for an https witness URL (default: the system CAs).")
    audit_log_public_key_file: Path | None = Field(
        default=None, description="The log's public key (PEM) `audit verify` trusts; default: derived from the signing key file.")
