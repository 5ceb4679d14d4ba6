"""The node's settings conventions, shared by every library that reads configuration.

One environment prefix (``EUCAIM_``) for everything a service reads, and secrets in files
(``*_FILE`` settings) rather than in the environment: a file named by a setting must be
readable when the settings are loaded, so a wrong path stops a service at start with the
variable's name, never later in the middle of handling an event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "EUCAIM_"

__all__ = ["ENV_PREFIX", "NodeSettings", "PseudonymKeySettings", "ReadableFile", "read_secret", "read_tokens"]


class NodeSettings(BaseSettings):
    """Base of every settings class: one prefix, unknown variables ignored, immutable once loaded."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)


def _readable(path: Path) -> Path:
    try:
        path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return path


#: A path setting whose file must be readable when the settings are loaded (a secret, a CA bundle).
ReadableFile = Annotated[Path, AfterValidator(_readable)]


def read_secret(path: Path | None) -> str | None:
    """The text of a secret file, stripped of surrounding white space; None when no file is set."""
    return None if path is None else path.read_text().strip()


class PseudonymKeySettings(NodeSettings):
    """Where the node's pseudonymisation key is, and the prefix of its subject pseudonyms.

    Only the path: the key itself is read with :func:`eucaim_node.deid.load_key` by the service
    that uses it, so configuration stays free of the de-identification library.
    """

    hmac_key_file: Path = Field(description="File holding the node's HMAC key (>= 32 bytes); never logged.")
    site_prefix: str = Field(default="EUCAIM-LOCAL", pattern=r"^[A-Za-z0-9-]{1,24}$", description="Prefix of subject pseudonyms.")


def read_tokens(path: Path) -> dict[str, str]:
    """``token → client name`` from a file of ``name:token`` lines (the federated search's and the job API's clients);
    a line without a name is named after a hash prefix of its token."""
    import hashlib

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read token file {path}: {exc.strerror}") from None
    tokens: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        if not sep or not name.replace("-", "").replace("_", "").isalnum():
            name, token = "", line
        if len(token) < 16:
            raise ValueError(f"token file {path}, line {number}: a token needs at least 16 characters")
        tokens[token] = name or "client-" + hashlib.sha256(token.encode()).hexdigest()[:8]
    return tokens
