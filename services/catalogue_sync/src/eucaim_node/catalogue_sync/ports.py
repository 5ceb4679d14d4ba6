"""What the catalogue-sync core needs from the world."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from eucaim_node.events import CollectionUpdated, Event


class CollectionStore(Protocol):
    async def update_subject(self, subject_key: str, collection_id: str) -> set[str]:
        """Recompute the subject's entries from the catalogue; the collections whose aggregates changed."""

    async def compute_aggregates(self, collection_id: str) -> tuple[dict[str, Any], datetime | None, int]:
        """Aggregates, the newest change time they reflect (the watermark) and their version."""

    async def save_aggregates(self, collection_id: str, aggregates: dict[str, Any], watermark: datetime | None,
                              version: int) -> bool:
        """Store unless a fresher computation (higher version) is stored already; True if stored."""

    async def stored(self, collection_id: str) -> dict[str, Any] | None: ...
    async def collection_ids(self) -> list[str]: ...


class CollectionUpdatedPublisher(Protocol):
    async def __call__(self, event: CollectionUpdated) -> None: ...


# -- what the federation API reads (core/federation.py) ----------------------------------------------------------

class SearchRows(Protocol):
    async def rows(self, collection_ids: list[str]) -> list[dict[str, Any]]:
        """Every study row (the search fields) of these collections, as of the newest committed state."""


class NoiseSecret(Protocol):
    async def __call__(self) -> bytes:
        """The node's key for the search's deterministic noise."""


class PublishedVersions(Protocol):
    async def latest(self, collection_id: str) -> dict[str, Any] | None:
        """The newest published description of the collection (``version``, ``turtle``, ``created_at``)."""

    async def get(self, collection_id: str, version: int) -> dict[str, Any] | None: ...


class AccessRecorder(Protocol):
    async def __call__(self, event: Event) -> None:
        """Publish an ``AccessRecorded`` event; raises when it was not acknowledged."""


class VersionOutbox(Protocol):
    """The outbox side of the dataset versions (``adapters/versions.py``): due entries, leases, outcomes."""

    async def due(self, now: datetime) -> list[dict[str, Any]]: ...
    async def newer_than(self, collection_id: str, version: int) -> bool: ...
    async def claim(self, doc_id: str, now: datetime, lease_until: datetime) -> dict[str, Any] | None:
        """The entry with our lease on it, or None if another worker holds it (or it is no longer pending)."""

    async def get(self, collection_id: str, version: int) -> dict[str, Any] | None: ...
    async def settle(self, doc_id: str, changes: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class PushOutcome:
    """What the remote catalogue answered: ``error`` is None on success; ``remote`` names it for logs (host only)."""

    status: int | None
    error: str | None
    remote: str


class RemoteCatalogue(Protocol):
    """Where published dataset descriptions go (``adapters/remote_catalogue.py``: an HTTP PUT)."""

    async def put(self, collection_id: str, turtle: str, *, idempotency_key: str, version_label: str) -> PushOutcome:
        """Deliver one version's Turtle; never raises for a failed delivery (the outcome says it)."""

    async def close(self) -> None: ...
