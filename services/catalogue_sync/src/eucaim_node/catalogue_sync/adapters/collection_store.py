"""Collection aggregates computed from, and stored beside, the catalogue in MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.events import CollectionAggregates
from eucaim_node.store import collections


class MongoCollectionStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._studies = db[collections.CATALOGUE_STUDIES]
        self._collections = db[collections.CATALOGUE_COLLECTIONS]

    async def compute_aggregates(self, collection_id: str) -> tuple[CollectionAggregates, datetime | None]:
        # Plain finds and sums: portable between MongoDB and FerretDB, linear in the collection.
        subjects, modalities, body_parts = set(), set(), set()
        studies = series = instances = 0
        watermark: datetime | None = None
        cursor = self._studies.find(
            {"collection_id": collection_id},
            {"subject_key": 1, "modalities": 1, "body_parts": 1, "series_count": 1, "instance_count": 1, "indexed_at": 1},
        )
        async for doc in cursor:
            studies += 1
            subjects.add(doc.get("subject_key"))
            modalities.update(doc.get("modalities", ()))
            body_parts.update(doc.get("body_parts", ()))
            series += int(doc.get("series_count", 0))
            instances += int(doc.get("instance_count", 0))
            at = doc.get("indexed_at")
            if at is not None and (watermark is None or at > watermark):
                watermark = at
        aggregates = CollectionAggregates(
            subjects=len(subjects), studies=studies, series=series, instances=instances,
            modalities=tuple(sorted(modalities)), body_parts=tuple(sorted(body_parts)),
        )
        return aggregates, watermark

    async def save_aggregates(self, collection_id: str, aggregates: CollectionAggregates, watermark: datetime | None) -> bool:
        stamp = watermark or datetime.fromtimestamp(0, UTC)
        update = {"$set": {"aggregates": aggregates.model_dump(), "watermark": stamp, "updated_at": datetime.now(UTC)}}
        try:
            result = await self._collections.update_one(
                {"_id": collection_id, "watermark": {"$lte": stamp}}, update, upsert=True)
        except DuplicateKeyError:
            return False  # the document exists with a newer watermark: keep it
        return result.matched_count > 0 or result.upserted_id is not None
