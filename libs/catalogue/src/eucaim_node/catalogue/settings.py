"""Settings of the federation features (env prefix ``EUCAIM_``), composed into the services' settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from eucaim_node.settings import NodeSettings, ReadableFile, read_secret, read_tokens

from .config import CollectionsConfig, ConfigError, load_config
from .results import Protection


class CollectionsSettings(NodeSettings):
    collections_file: Path | None = Field(
        default=None, description="YAML file of collections, their rules and metadata (docs/federation.md); "
                                  "unset: one default collection described with placeholders.")

    @field_validator("collections_file")
    @classmethod
    def _valid(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                load_config(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    def collections_config(self) -> CollectionsConfig:
        return load_config(self.collections_file)


class SearchSettings(NodeSettings):
    search_token_file: Path | None = Field(
        default=None, description="Shared secrets of federated search clients, one per line as 'name:token' or "
                                  "'token' (at least 16 characters); unset: the search endpoint answers 404.")
    search_protection: Literal["suppress", "round", "perturb"] = Field(
        default="perturb", description="Small-cell protection of answered counts (see docs/federation.md).")
    search_min_count: int = Field(default=10, ge=1, le=1000, description="Cells with fewer subjects or studies are suppressed.")
    search_rounding_step: int = Field(default=10, ge=1, le=1000, description="Counts are rounded to this step (round, perturb).")
    search_epsilon: float = Field(default=0.28, gt=0, le=10, description="Privacy parameter of the Laplace noise (perturb).")

    @field_validator("search_token_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_tokens(value)
        return value

    def search_tokens(self) -> dict[str, str]:
        return read_tokens(self.search_token_file) if self.search_token_file else {}

    def protection(self, secret: bytes) -> Protection:
        return Protection(self.search_protection, self.search_min_count, self.search_rounding_step, self.search_epsilon,
                          secret)


class PublicationSettings(NodeSettings):
    catalogue_push_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$",
        description="Remote catalogue endpoint; '{collection_id}' is replaced. Each new dataset version is PUT there "
                    "(text/turtle) through the durable outbox. Unset: nothing is pushed.")
    catalogue_push_token_file: ReadableFile | None = Field(default=None, description="Bearer token for the remote catalogue.")
    catalogue_push_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    catalogue_push_backoff_seconds: float = Field(default=2.0, gt=0, le=600, description="First retry delay (doubles).")
    catalogue_push_backoff_max_seconds: float = Field(default=600.0, gt=0, le=86400)
    catalogue_count_granularity: int = Field(
        default=10, ge=1, le=1000, description="Published counts at or above this are rounded down to a multiple of it, "
                                               "so not every new study makes a new dataset version.")

    def push_token(self) -> str | None:
        return read_secret(self.catalogue_push_token_file)
