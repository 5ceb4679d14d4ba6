"""Keep each collection's aggregates equal to what the catalogue holds.

Aggregates are recomputed from the catalogue on every ``StudyIndexed`` rather than
incremented: a study indexed again (late instances, a redelivery) changes the counts by
exactly what changed, and a recomputation can never drift. Consumers of different
partitions may recompute the same collection concurrently; each computation carries the
newest ``indexed_at`` it saw, and an older computation never overwrites a newer one.
"""

from __future__ import annotations

import logging

from eucaim_node.events import CollectionUpdated, StudyIndexed

from ..ports import CollectionStore, CollectionUpdatedPublisher

log = logging.getLogger("eucaim_node.catalogue_sync")
PRODUCER = "catalogue-sync"


class CollectionAggregator:
    def __init__(self, store: CollectionStore, publish: CollectionUpdatedPublisher) -> None:
        self._store = store
        self._publish = publish

    async def refresh(self, event: StudyIndexed) -> None:
        aggregates, watermark = await self._store.compute_aggregates(event.collection_id)
        if not await self._store.save_aggregates(event.collection_id, aggregates, watermark):
            log.info("newer aggregates already stored", extra={"collection_id": event.collection_id})
        await self._publish(CollectionUpdated.create(
            cause=event, producer=PRODUCER, collection_id=event.collection_id, aggregates=aggregates))
        log.info("collection aggregates refreshed", extra={"collection_id": event.collection_id, **aggregates.model_dump()})
