"""Quarantine log in MongoDB: one document per held-back clinical instance, with its reasons."""

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.events import QuarantinedInstance
from eucaim_node.store import collections


class MongoQuarantineLog:
    def __init__(self, db: AsyncDatabase) -> None:
        self._coll = db[collections.ANONYMISATION_QUARANTINE]

    async def record(self, study_key: str, instance: QuarantinedInstance, event_id: str) -> None:
        # Keyed by the clinical instance: reprocessing updates the entry, never duplicates it.
        await self._coll.update_one(
            {"_id": instance.orthanc_instance_id},
            {"$set": {**instance.model_dump(), "study_key": study_key, "event_id": event_id,
                      "recorded_at": datetime.now(UTC)}},
            upsert=True,
        )
