"""Settings of the witness (``EUCAIM_WITNESS_*``; secrets in files, like every component of the node)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from eucaim_node.settings import NodeSettings, ReadableFile


class WitnessSettings(NodeSettings):
    witness_name: str = Field(
        default="witness.eucaim-node", pattern=r"^[\x21-\x2a\x2c-\x7e]{1,128}$",
        description="The witness's key name in its cosignature lines (no '+' or spaces), e.g. witness.<site>.")
    witness_key_file: Path = Field(description="The witness's Ed25519 private key (PEM, PKCS#8).")
    witness_key_generate: bool = Field(
        default=False, description="Create the key file (0600) if it is missing; otherwise a missing key is an error.")
    witness_vkey_file: Path | None = Field(
        default=None, description="Where to write the witness's verifier key (name+id+base64(0x04||key)) at start.")
    witness_logs_file: ReadableFile = Field(
        description="The logs this witness cosigns: one signed-note verifier key (origin+id+base64(0x01||key)) per line.")
    witness_state_dir: Path = Field(description="The witness's own state directory (its SQLite file lives there).")
    witness_submit_token_file: ReadableFile = Field(
        description="Bearer token a client must present to POST /add-checkpoint.")
    witness_host: str = Field(default="127.0.0.1", description="Address the HTTP server listens on.")
    witness_port: int = Field(default=8106, ge=1, le=65535, description="Port of the HTTP server.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
