"""Settings shared by every service, composed into each service's own settings class.

Every service reads one env prefix, ``EUCAIM_``; secrets come from files (``*_FILE``
settings), never from the environment itself. A wrong or missing value stops the service
at start with a message naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import ssl
import sys
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings

from eucaim_node.settings import ENV_PREFIX, NodeSettings, ReadableFile, read_secret


class ServiceSettings(NodeSettings):
    health_host: str = Field(default="127.0.0.1", description="Address of the health/metrics HTTP server.")
    health_port: int = Field(ge=1, le=65535, description="Port of the health/metrics HTTP server.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"


#: Security protocols without TLS: refused unless ``EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT`` is true.
INSECURE_KAFKA_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SASL_PLAINTEXT")


class KafkaSettings(NodeSettings):
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    kafka_topic_partitions: int = Field(default=3, ge=1, description="Partitions of topics the node creates.")
    kafka_replication_factor: int = Field(default=1, ge=1, description="Replication of topics the node creates (3 in production).")
    kafka_max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts for a failing message before it is dead-lettered.")
    kafka_retry_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    kafka_transient_backoff_max_seconds: float = Field(
        default=30.0, gt=0, le=240, description="Cap of the wait between retries while a dependency is down."
    )
    kafka_allow_insecure_plaintext: bool = Field(
        default=False, description="Allow Kafka without TLS (PLAINTEXT, SASL_PLAINTEXT): development only.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_SSL", description="How to reach Kafka: TLS (SSL), SASL, both (SASL_SSL) or neither.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: ReadableFile | None = Field(default=None, description="File holding the SASL password.")
    kafka_ssl_ca_file: ReadableFile | None = Field(default=None, description="CA bundle for Kafka's TLS certificates (default: the system's).")

    @field_validator("kafka_security_protocol")
    @classmethod
    def _tls_unless_allowed(cls, protocol: str, info: ValidationInfo) -> str:
        """Without TLS anyone on the path reads events and, without SASL, anyone may publish (decision 0060)."""
        if protocol in INSECURE_KAFKA_PROTOCOLS and not info.data.get("kafka_allow_insecure_plaintext"):
            raise ValueError(f"{protocol} Kafka is refused (no TLS); use SASL_SSL, or set "
                             "EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT=true for a development Kafka")
        return protocol

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password_file):
            raise ValueError(f"{self.kafka_security_protocol} needs EUCAIM_KAFKA_SASL_USERNAME and "
                             "EUCAIM_KAFKA_SASL_PASSWORD_FILE")
        return self

    def kafka_client_options(self) -> dict[str, Any]:
        """Connection options for aiokafka clients (producer, consumer, admin): bootstrap and security."""
        options: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap_servers,
                                   "security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            cafile = str(self.kafka_ssl_ca_file) if self.kafka_ssl_ca_file else None
            options["ssl_context"] = ssl.create_default_context(cafile=cafile)
        if self.kafka_security_protocol.startswith("SASL_"):
            assert self.kafka_sasl_password_file is not None
            options.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_sasl_username,
                           sasl_plain_password=read_secret(self.kafka_sasl_password_file))
        return options

    def kafka_broker_security(self):
        """The same, as FastStream's security object for ``KafkaBroker(security=...)`` (None: PLAINTEXT)."""
        from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

        options = self.kafka_client_options()
        use_ssl = "ssl_context" in options
        if self.kafka_security_protocol == "PLAINTEXT":
            return None
        if self.kafka_security_protocol == "SSL":
            return BaseSecurity(ssl_context=options["ssl_context"], use_ssl=True)
        cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[self.kafka_sasl_mechanism]
        return cls(options["sasl_plain_username"], options["sasl_plain_password"],
                   ssl_context=options.get("ssl_context"), use_ssl=use_ssl)


S = TypeVar("S", bound=BaseSettings)


class ConfigurationError(SystemExit):
    """Raised when settings are wrong; carries exit status 2 and a readable message."""


def settings_help(name: str, cls: type[BaseSettings]) -> str:
    """What ``--help`` prints: the service takes no arguments; every setting is an environment variable."""
    lines = [f"usage: python -m eucaim_node.{name.replace('-', '_')}",
             f"The {name} service takes no arguments: it reads these environment variables ({cls.__name__}).",
             "A *_FILE variable names a file holding a secret; the secret itself is never in the environment.", ""]
    for field, info in cls.model_fields.items():
        state = "required" if info.is_required() else f"default: {info.get_default(call_default_factory=True)!r}"
        lines.append(f"  {ENV_PREFIX}{field.upper()}  ({state})" + (f"  {info.description}" if info.description else ""))
    return "\n".join(lines)


def exit_on_arguments(name: str, cls: type[BaseSettings], argv: list[str] | None = None) -> None:
    """``--help``/``-h``: print :func:`settings_help` and exit 0; any other argument: one line and exit 2.

    A container orchestrator passing arguments the service ignores would hide a wrong manifest."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        return
    if args in (["--help"], ["-h"]):
        print(settings_help(name, cls))
        raise SystemExit(0)
    print(f"configuration error in {name}: unexpected arguments {' '.join(args)!r}; "
          "it is configured by EUCAIM_* environment variables only (--help lists them)", file=sys.stderr)
    raise ConfigurationError(2)


def load_settings(cls: type[S]) -> S:
    """Load ``cls`` from the environment, or exit with one line per wrong variable."""
    try:
        return cls()
    except ValidationError as exc:
        print("\n".join([f"configuration error in {cls.__name__}:", *describe_errors(exc)]), file=sys.stderr)
        raise ConfigurationError(2) from None


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per wrong setting, naming its environment variable (a model-wide check names its own)."""
    lines = []
    for err in exc.errors():
        name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
        lines.append(f"  {name}: {err['msg']}" if err["loc"] else f"  {err['msg']}")
    return lines
