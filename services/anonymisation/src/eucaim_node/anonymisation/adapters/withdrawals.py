"""Withdrawn subjects (pseudonymous keys only), checked before anything is released to the research Orthanc."""

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.store.collections import ANONYMISATION_WITHDRAWALS


class MongoWithdrawals:
    def __init__(self, db: AsyncDatabase) -> None:
        self._coll = db[ANONYMISATION_WITHDRAWALS]

    async def record(self, subject_key: str, event_id: str) -> None:
        try:
            await self._coll.insert_one({"_id": subject_key, "event_id": event_id, "recorded_at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # withdrawn already

    async def is_withdrawn(self, subject_key: str) -> bool:
        return await self._coll.find_one({"_id": subject_key}) is not None
