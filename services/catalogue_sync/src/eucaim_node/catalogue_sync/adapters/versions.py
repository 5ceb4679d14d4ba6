"""Dataset versions and their delivery state (the outbox) in MongoDB."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.store.collections import CATALOGUE_DATASET_VERSIONS


class MongoVersionStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._coll = db[CATALOGUE_DATASET_VERSIONS]

    async def ensure_indexes(self) -> None:
        await self._coll.create_index([("collection_id", ASCENDING), ("version", DESCENDING)])
        await self._coll.create_index("delivery.status")

    async def latest(self, collection_id: str) -> dict[str, Any] | None:
        return await self._coll.find_one({"collection_id": collection_id}, sort=[("version", DESCENDING)])

    async def first(self, collection_id: str) -> dict[str, Any] | None:
        return await self._coll.find_one({"collection_id": collection_id}, sort=[("version", ASCENDING)])

    async def get(self, collection_id: str, version: int) -> dict[str, Any] | None:
        return await self._coll.find_one({"collection_id": collection_id, "version": version})

    async def insert(self, doc: dict[str, Any]) -> bool:
        try:
            await self._coll.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def versions(self, collection_id: str) -> list[int]:
        return [d["version"] async for d in self._coll.find({"collection_id": collection_id}, {"version": 1})]

    # -- outbox ---------------------------------------------------------------------------------------

    async def due(self, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
        return await self._coll.find(
            {"delivery.status": "pending", "delivery.next_attempt_at": {"$lte": now}},
            {"turtle": 0}).sort("delivery.next_attempt_at", ASCENDING).limit(limit).to_list(None)

    async def newer_than(self, collection_id: str, version: int) -> bool:
        return await self._coll.find_one({"collection_id": collection_id, "version": {"$gt": version},
                                          "delivery.status": {"$in": ["pending", "delivered"]}}, {"_id": 1}) is not None

    async def claim(self, doc_id: str, now: datetime, lease_until: datetime) -> dict[str, Any] | None:
        """Take the lease on a due entry. One claimant wins: the update is guarded by a claim counter
        (optimistic concurrency, the pattern decision 0002 verified on FerretDB), never by $inc alone."""
        doc = await self._coll.find_one({"_id": doc_id})
        if doc is None or doc["delivery"]["status"] != "pending" or doc["delivery"]["lease_until"] > now:
            return None
        claims = doc["delivery"].get("claims", 0)
        result = await self._coll.update_one(
            {"_id": doc_id, "delivery.status": "pending", "delivery.claims": claims},
            {"$set": {"delivery.lease_until": lease_until, "delivery.claims": claims + 1}})
        if result.modified_count != 1:
            return None
        doc["delivery"].update(lease_until=lease_until, claims=claims + 1)
        return doc

    async def settle(self, doc_id: str, changes: dict[str, Any]) -> None:
        await self._coll.update_one({"_id": doc_id}, {"$set": {f"delivery.{k}": v for k, v in changes.items()}})
