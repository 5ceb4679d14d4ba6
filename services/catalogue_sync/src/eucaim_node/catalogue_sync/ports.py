"""What the catalogue-sync core needs from the world."""

from datetime import datetime
from typing import Protocol

from eucaim_node.events import CollectionAggregates, CollectionUpdated


class CollectionStore(Protocol):
    async def compute_aggregates(self, collection_id: str) -> tuple[CollectionAggregates, datetime | None]:
        """Aggregates from the catalogue, and the newest ``indexed_at`` they reflect (the watermark)."""

    async def save_aggregates(self, collection_id: str, aggregates: CollectionAggregates, watermark: datetime | None) -> bool:
        """Store unless a fresher computation (higher watermark) is stored already; True if stored."""


class CollectionUpdatedPublisher(Protocol):
    async def __call__(self, event: CollectionUpdated) -> None: ...
