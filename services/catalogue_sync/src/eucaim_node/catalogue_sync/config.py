"""Settings of the catalogue-sync service (env prefix ``EUCAIM_``)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from pydantic import Field, field_validator

from eucaim_node.catalogue.settings import CollectionsSettings, PublicationSettings, SearchSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.settings import NodeSettings
from eucaim_node.store import MongoSettings

from .core.ratelimit import ClientLimits, TokenBuckets


class FederationHttpSettings(NodeSettings):
    """Limits of the public federation API (search and catalogue), per client address; on by default."""

    federation_anonymous_requests: int = Field(
        default=60, ge=1, le=100_000,
        description="Requests without a valid token one address may make per period (then 429 with Retry-After).")
    federation_anonymous_period_seconds: float = Field(default=60.0, gt=0, le=86_400)
    federation_failed_logins: int = Field(
        default=5, ge=1, le=10_000,
        description="Searches without a valid token (or wrong tokens) one address may make per period; then every "
                    "attempt from it is refused with 429 before its token is even checked.")
    federation_failed_login_period_seconds: float = Field(default=300.0, gt=0, le=86_400)
    federation_rate_limit_clients: int = Field(
        default=10_000, ge=1, le=10_000_000,
        description="Addresses remembered by the rate limiter (bounded memory; least recently used forgotten first).")
    federation_max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="Largest search body read; a larger one is refused with 413 as soon as it exceeds this.")
    federation_trusted_proxies: str = Field(
        default="", description="Comma-separated addresses of reverse proxies whose X-Forwarded-For names the client; "
                                "unset: the TCP peer is the client (behind a proxy, every client shares its budget).")

    @field_validator("federation_trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value

    def trusted_proxies(self) -> frozenset[str]:
        return frozenset(v.strip() for v in self.federation_trusted_proxies.split(",") if v.strip())

    def client_limits(self, clock: Callable[[], float] = time.monotonic) -> ClientLimits:
        return ClientLimits(
            TokenBuckets(self.federation_anonymous_requests, self.federation_anonymous_period_seconds,
                         self.federation_rate_limit_clients, clock),
            TokenBuckets(self.federation_failed_logins, self.federation_failed_login_period_seconds,
                         self.federation_rate_limit_clients, clock))


class CatalogueSyncSettings(ServiceSettings, KafkaSettings, MongoSettings, CollectionsSettings, SearchSettings,
                            PublicationSettings, FederationHttpSettings):
    pass
