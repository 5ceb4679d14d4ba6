"""The catalogue in MongoDB: ``catalogue_studies`` and ``catalogue_series``."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.store import collections


class MongoCatalogue:
    def __init__(self, db: AsyncDatabase) -> None:
        self._studies = db[collections.CATALOGUE_STUDIES]
        self._series = db[collections.CATALOGUE_SERIES]

    async def ensure_indexes(self) -> None:
        await self._series.create_index("study_key")
        await self._studies.create_index("collection_id")
        await self._studies.create_index("subject_key")

    async def replace_study(self, study: dict[str, Any], series: list[dict[str, Any]]) -> None:
        """Make the stored study and its series equal to these documents (each write idempotent).

        Series first, study last: a reader that sees the study document sees its series.
        """
        for doc in series:
            await self._series.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        await self._series.delete_many({"study_key": study["_id"], "_id": {"$nin": [d["_id"] for d in series]}})
        await self._studies.replace_one({"_id": study["_id"]}, study, upsert=True)
