"""Keep each collection's aggregates equal to what the catalogue holds, and its published description current.

Aggregates are recomputed from the catalogue on every ``StudyIndexed`` and ``StudyRemoved`` rather
than incremented: a study indexed again (late instances, a redelivery) or removed (a withdrawal)
changes the counts by exactly what changed, and a recomputation can never drift. Consumers of
different partitions may recompute the same collection concurrently; each computation carries the
newest change time it saw (``indexed_at`` of studies, ``removed_at`` of removal tombstones), and an
older computation never overwrites a newer one. The dataset description is then rendered from the
*stored* aggregates, so a stale computation cannot publish either.
"""

from __future__ import annotations

import logging

from eucaim_node.events import CollectionUpdated, StudyIndexed, StudyRemoved

from ..adapters.collection_store import summary
from ..ports import CollectionStore, CollectionUpdatedPublisher
from .publication import DatasetPublisher

log = logging.getLogger("eucaim_node.catalogue_sync")
PRODUCER = "catalogue-sync"


class CollectionAggregator:
    def __init__(self, store: CollectionStore, publish: CollectionUpdatedPublisher, publisher: DatasetPublisher) -> None:
        self._store = store
        self._publish = publish
        self._publisher = publisher

    async def refresh(self, event: StudyIndexed | StudyRemoved) -> None:
        aggregates, watermark = await self._store.compute_aggregates(event.collection_id)
        if not await self._store.save_aggregates(event.collection_id, aggregates, watermark):
            log.info("newer aggregates already stored", extra={"collection_id": event.collection_id})
        await self._publish(CollectionUpdated.create(
            cause=event, producer=PRODUCER, collection_id=event.collection_id, aggregates=summary(aggregates)))
        log.info("collection aggregates refreshed", extra={"collection_id": event.collection_id,
                                                           **summary(aggregates).model_dump()})
        stored = await self._store.stored(event.collection_id)
        if stored is not None:
            await self._publisher.publish_if_changed(event.collection_id, stored["aggregates"], stored.get("watermark"),
                                                     cause=event)

    async def reconcile(self) -> int:
        """At start: publish every collection whose description changed (e.g. the collections file was edited)."""
        published = 0
        for collection_id in await self._store.collection_ids():
            stored = await self._store.stored(collection_id)
            if stored is not None and await self._publisher.publish_if_changed(
                    collection_id, stored["aggregates"], stored.get("watermark"), cause=f"reconcile:{collection_id}"):
                published += 1
        return published
