"""Settings shared by every service, composed into each service's own settings class.

Every service reads one env prefix, ``EUCAIM_``; secrets come from files (``*_FILE``
settings), never from the environment itself. A wrong or missing value stops the service
at start with a message naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "EUCAIM_"


class NodeSettings(BaseSettings):
    """Base of every settings class: one prefix, unknown variables ignored."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)


class ServiceSettings(NodeSettings):
    health_host: str = Field(default="127.0.0.1", description="Address of the health/metrics HTTP server.")
    health_port: int = Field(ge=1, le=65535, description="Port of the health/metrics HTTP server.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"


class KafkaSettings(NodeSettings):
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    kafka_topic_partitions: int = Field(default=3, ge=1, description="Partitions of topics the node creates.")
    kafka_replication_factor: int = Field(default=1, ge=1, description="Replication of topics the node creates (3 in production).")
    kafka_max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts for a failing message before it is dead-lettered.")
    kafka_retry_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    kafka_transient_backoff_max_seconds: float = Field(
        default=30.0, gt=0, le=240, description="Cap of the wait between retries while a dependency is down."
    )


class PseudonymKeySettings(NodeSettings):
    hmac_key_file: Path = Field(description="File holding the node's HMAC key (>= 32 bytes); never logged.")
    site_prefix: str = Field(default="EUCAIM-LOCAL", pattern=r"^[A-Za-z0-9-]{1,24}$", description="Prefix of subject pseudonyms.")

    def hmac_key(self) -> bytes:
        from eucaim_node.deid import load_key

        return load_key(self.hmac_key_file)


S = TypeVar("S", bound=BaseSettings)


class ConfigurationError(SystemExit):
    """Raised when settings are wrong; carries exit status 2 and a readable message."""


def load_settings(cls: type[S]) -> S:
    """Load ``cls`` from the environment, or exit with one line per wrong variable."""
    try:
        return cls()
    except ValidationError as exc:
        lines = [f"configuration error in {cls.__name__}:"]
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {name}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise ConfigurationError(2) from None
