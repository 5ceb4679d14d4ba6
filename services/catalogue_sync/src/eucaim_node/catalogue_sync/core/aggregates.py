"""Keep each collection's aggregates equal to what the catalogue holds, and its published description current.

On every ``StudyIndexed`` and ``StudyRemoved`` the subject's entry in its collection's part is recomputed
from the catalogue (its study documents, read by key), then the collection's aggregates are merged from
its parts' totals (decision 0091): O(changed subject) reads and writes, not O(collection). An entry is
recomputed, never incremented, so a redelivered event or a crash between any two writes cannot make the
counts drift: processing the event again finishes the job. Consumers of different partitions may update
one collection concurrently: parts are written under optimistic revisions, and the collection document
keeps the merge of the highest version (sum of part revisions) seen. The dataset description is then
rendered from the *stored* aggregates, so a stale computation cannot publish either.
"""

from __future__ import annotations

import logging

from eucaim_node.events import CollectionUpdated, StudyIndexed, StudyRemoved

from ..ports import CollectionStore, CollectionUpdatedPublisher
from .parts import summary
from .publication import DatasetPublisher

log = logging.getLogger("eucaim_node.catalogue_sync")
PRODUCER = "catalogue-sync"


class CollectionAggregator:
    def __init__(self, store: CollectionStore, publish: CollectionUpdatedPublisher, publisher: DatasetPublisher) -> None:
        self._store = store
        self._publish = publish
        self._publisher = publisher

    async def refresh(self, event: StudyIndexed | StudyRemoved) -> None:
        # Other collections change too when the study moved out of one (its rules changed).
        changed = await self._store.update_subject(event.subject_key, event.collection_id)
        for collection_id in sorted(changed | {event.collection_id}):
            aggregates, watermark, version = await self._store.compute_aggregates(collection_id)
            if not await self._store.save_aggregates(collection_id, aggregates, watermark, version):
                log.info("newer aggregates already stored", extra={"collection_id": collection_id})
            if collection_id == event.collection_id:
                await self._publish(CollectionUpdated.create(
                    cause=event, producer=PRODUCER, collection_id=collection_id, aggregates=summary(aggregates)))
            log.info("collection aggregates refreshed", extra={"collection_id": collection_id,
                                                               **summary(aggregates).model_dump()})
            stored = await self._store.stored(collection_id)
            if stored is not None:
                await self._publisher.publish_if_changed(collection_id, stored["aggregates"], stored.get("watermark"),
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
