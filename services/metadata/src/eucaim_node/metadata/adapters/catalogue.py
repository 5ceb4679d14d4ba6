"""The catalogue in MongoDB: studies, series and subjects, withdrawals and removal tombstones."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.store.collections import CATALOGUE_REMOVED_STUDIES, CATALOGUE_SUBJECTS, CATALOGUE_WITHDRAWN_SUBJECTS
from eucaim_node.store import collections

from ..core.documents import subject_document

#: Attempts of the optimistic update of one subject document before giving up (then the message is retried).
SUBJECT_ATTEMPTS = 20


class SubjectUpdateConflict(RuntimeError):
    """Concurrent writers kept changing the subject document; the message is retried."""


class MongoCatalogue:
    def __init__(self, db: AsyncDatabase) -> None:
        self._studies = db[collections.CATALOGUE_STUDIES]
        self._series = db[collections.CATALOGUE_SERIES]
        self._subjects = db[CATALOGUE_SUBJECTS]
        self._withdrawn = db[CATALOGUE_WITHDRAWN_SUBJECTS]
        self._removed = db[CATALOGUE_REMOVED_STUDIES]

    async def ensure_indexes(self) -> None:
        await self._series.create_index("study_key")
        await self._studies.create_index("collection_id")
        await self._studies.create_index("subject_key")
        await self._removed.create_index("subject_key")
        await self._removed.create_index("collection_id")

    async def replace_study(self, study: dict[str, Any], series: list[dict[str, Any]]) -> None:
        """Make the stored study and its series equal to these documents (each write idempotent).

        Series first, study last: a reader that sees the study document sees its series.
        """
        for doc in series:
            await self._series.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        await self._series.delete_many({"study_key": study["_id"], "_id": {"$nin": [d["_id"] for d in series]}})
        await self._studies.replace_one({"_id": study["_id"]}, study, upsert=True)

    async def refresh_subject(self, subject_key: str, changed_study: str | None = None) -> None:
        # Several consumers may refresh one subject at once (its studies hash to different partitions).
        # FerretDB has no transactions, so: optimistic concurrency on a revision field (decision 0002).
        # The subject's studies are read by key (its known study keys and the one that changed), never by a
        # query on subject_key: FerretDB 1.24 answers that by decoding every study (decision 0091).
        for _ in range(SUBJECT_ATTEMPTS):
            current = await self._subjects.find_one({"_id": subject_key})
            keys = sorted({*(current or {}).get("study_keys", ()), *([changed_study] if changed_study else [])})
            found = await asyncio.gather(*(self._studies.find_one({"_id": k}) for k in keys))
            studies = [s for s in found if s is not None and s.get("subject_key") == subject_key]
            if not studies:
                if current is not None:
                    await self._subjects.delete_one({"_id": subject_key, "revision": current["revision"]})
                return
            doc = subject_document(subject_key, studies)
            if current is None:
                try:
                    await self._subjects.insert_one({**doc, "revision": 1})
                    return
                except DuplicateKeyError:
                    continue
            result = await self._subjects.replace_one({"_id": subject_key, "revision": current["revision"]},
                                                      {**doc, "revision": current["revision"] + 1})
            if result.matched_count:
                return
        raise SubjectUpdateConflict(f"subject document kept changing after {SUBJECT_ATTEMPTS} attempts")

    async def record_withdrawal(self, subject_key: str, at: datetime, event_id: str) -> None:
        try:
            await self._withdrawn.insert_one({"_id": subject_key, "withdrawn_at": at, "event_id": event_id})
        except DuplicateKeyError:
            pass  # withdrawn already: the first record stands

    async def is_withdrawn(self, subject_key: str) -> bool:
        return await self._withdrawn.find_one({"_id": subject_key}) is not None

    async def studies_of(self, subject_key: str) -> list[dict[str, Any]]:
        return await self._studies.find({"subject_key": subject_key}).to_list(None)

    async def remove_study(self, study: dict[str, Any], at: datetime) -> None:
        await self._removed.replace_one(
            {"_id": study["_id"]},
            {"_id": study["_id"], "collection_id": study["collection_id"], "subject_key": study["subject_key"],
             "removed_at": at},
            upsert=True)
        await self._series.delete_many({"study_key": study["_id"]})
        await self._studies.delete_one({"_id": study["_id"]})

    async def removed_studies_of(self, subject_key: str) -> list[dict[str, Any]]:
        return await self._removed.find({"subject_key": subject_key}).to_list(None)
