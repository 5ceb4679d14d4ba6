"""What the readiness checks need to know about a running node.

An adapter answers each question by asking the node itself (its HTTP API, its store, its settings, the
existing verifiers); it raises :class:`ProbeError` (or any exception) with a readable message when it cannot,
and the check that asked turns that into a failure with the message as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ProbeError(RuntimeError):
    """The node could not be asked (a component down, a file missing); the message says which."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: Any = None  # parsed JSON, or text
    content_type: str = ""
    retry_after: str | None = None  # of a 429


@dataclass(frozen=True)
class DeliveryState:
    collection_id: str
    version: int
    status: str  # pending, delivered, invalid, not-configured, superseded
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class DeidSettings:
    profile: str
    options: tuple[str, ...]
    phi_guard: bool
    error: str | None = None  # the profile could not be loaded


@dataclass(frozen=True)
class Transport:
    kafka_security_protocol: str
    mongo_tls: bool
    orthanc_auth: bool  # both Orthancs refuse anonymous REST requests
    search_url: str


@dataclass(frozen=True)
class LedgerVerification:
    ok: bool
    records: int
    heads_verified: int
    witnessed_size: int | None  # None: the witness holds no checkpoint of the log yet (then ``finding`` says so)
    finding: str | None = None


@dataclass(frozen=True)
class DatasetsVerification:
    ok: bool
    summary: str
    failures: tuple[str, ...] = field(default_factory=tuple)
    datasets: int = 0  # materialised datasets verified


class NodeProbe(Protocol):
    def node_name(self) -> str: ...

    # -- store
    def store_ping(self) -> str:
        """A short description of the store reached (e.g. its version); raises when it is down."""

    # -- Tier 1
    def catalogue(self, fmt: str = "ttl") -> HttpAnswer:
        """The public ``GET /catalogue`` answer (Turtle text or JSON-LD)."""
    def dataset(self, collection_id: str) -> HttpAnswer: ...
    def collections_config(self) -> Any:
        """The running node's collections file (``CollectionsConfig``)."""
    def push_configured(self) -> str | None:
        """The remote catalogue URL the node pushes to (host only), or None."""
    def deliveries(self) -> list[DeliveryState]:
        """The newest version of each collection and its delivery state."""

    # -- Tier 2
    def search_token(self) -> str | None:
        """A token the node accepts, from its token file; None when the file is missing or empty."""
    def search(self, body: Any, token: str | None) -> HttpAnswer: ...
    def request_examples(self) -> list[dict[str, Any]]:
        """EUCAIM's reference request examples: name, body, and ``eucaim`` (False when its keys are another
        network's, e.g. BBMRI's, shown for the AST's shape only)."""
    def search_protection(self) -> tuple[str, int]:
        """(protection mode, minimum count) of the running search."""
    def collection_quality(self) -> dict[str, dict[str, Any]]:
        """Each collection's summed data quality (``aggregates.quality``)."""

    # -- Tier 3
    def datasets_verify(self) -> DatasetsVerification | None:
        """The outcome of verifying the node's Tier 3 datasets; None when the node has no such capability."""

    # -- de-identification
    def deid_settings(self) -> DeidSettings: ...
    def quarantine(self) -> tuple[int, int]:
        """(instances quarantined, of which not reviewed)."""

    # -- security
    def transport(self) -> Transport: ...
    def ledger(self) -> LedgerVerification: ...
