"""MongoDB-backed reception ledger: the change-feed cursor and announced study states."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.events import StudyReceived
from eucaim_node.store import collections

CURSOR_ID = "clinical-orthanc-changes"


class MongoReceptionLedger:
    def __init__(self, db: AsyncDatabase) -> None:
        self._cursors = db[collections.RECEPTION_CURSORS]
        self._received = db[collections.RECEPTION_RECEIVED_STUDIES]

    async def load_cursor(self) -> int | None:
        doc = await self._cursors.find_one({"_id": CURSOR_ID})
        return None if doc is None else int(doc["seq"])

    async def save_cursor(self, seq: int) -> None:
        await self._cursors.update_one(
            {"_id": CURSOR_ID}, {"$set": {"seq": int(seq), "updated_at": datetime.now(UTC)}}, upsert=True
        )

    async def was_received(self, orthanc_study_id: str, last_update: str) -> bool:
        doc = await self._received.find_one({"_id": orthanc_study_id})
        return doc is not None and doc.get("last_update") == last_update

    async def mark_received(self, event: StudyReceived) -> None:
        await self._received.update_one(
            {"_id": event.orthanc_study_id},
            {"$set": {"last_update": event.orthanc_last_update, "study_key": event.study_key,
                      "event_id": str(event.event_id), "received_at": datetime.now(UTC)}},
            upsert=True,
        )
