"""The catalogue in MongoDB: studies, series and subjects, withdrawals and removal tombstones.

The one writer of the catalogue (metadata's ``CatalogueWriter`` port): it stores the library's typed documents
(``eucaim_node.catalogue.documents``) in their stored form and queries by the names those models derive.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.catalogue.documents import (REMOVED, SERIES, STUDY, SUBJECT, RemovedStudy, SeriesDocument,
                                              StudyDocument)
from eucaim_node.store.collections import CATALOGUE_REMOVED_STUDIES, CATALOGUE_SUBJECTS, CATALOGUE_WITHDRAWN_SUBJECTS
from eucaim_node.store import collections
from eucaim_node.store.withdrawals import MongoWithdrawalList

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
        self._withdrawn = MongoWithdrawalList(db[CATALOGUE_WITHDRAWN_SUBJECTS])
        self._removed = db[CATALOGUE_REMOVED_STUDIES]

    async def ensure_indexes(self) -> None:
        await self._series.create_index(SERIES.study_key)
        await self._studies.create_index(STUDY.collection_id)
        await self._studies.create_index(STUDY.subject_key)
        await self._removed.create_index(REMOVED.subject_key)
        await self._removed.create_index(REMOVED.collection_id)

    async def replace_study(self, study: StudyDocument, series: list[SeriesDocument]) -> None:
        """Make the stored study and its series equal to these documents (each write idempotent).

        Series first, study last: a reader that sees the study document sees its series.
        """
        for doc in series:
            await self._series.replace_one({"_id": doc.key}, doc.to_document(), upsert=True)
        await self._series.delete_many({SERIES.study_key: study.key, "_id": {"$nin": [d.key for d in series]}})
        await self._studies.replace_one({"_id": study.key}, study.to_document(), upsert=True)

    async def refresh_subject(self, subject_key: str, changed_study: str | None = None) -> None:
        # Several consumers may refresh one subject at once (its studies hash to different partitions).
        # FerretDB has no transactions, so: optimistic concurrency on a revision field (decision 0002).
        # The subject's studies are read by key (its known study keys and the one that changed), never by a
        # query on subject_key: FerretDB 1.24 answers that by decoding every study (decision 0091).
        for _ in range(SUBJECT_ATTEMPTS):
            current = await self._subjects.find_one({"_id": subject_key})
            keys = sorted({*(current or {}).get(SUBJECT.study_keys, ()), *([changed_study] if changed_study else [])})
            found = await asyncio.gather(*(self._studies.find_one({"_id": k}) for k in keys))
            studies = [StudyDocument.from_document(s) for s in found if s is not None]
            studies = [s for s in studies if s.subject_key == subject_key]
            if not studies:
                if current is not None:
                    await self._subjects.delete_one({"_id": subject_key, "revision": current["revision"]})
                return
            doc = subject_document(subject_key, studies).to_document()
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
        await self._withdrawn.record(subject_key, event_id, at)

    async def is_withdrawn(self, subject_key: str) -> bool:
        return await self._withdrawn.is_withdrawn(subject_key)

    async def studies_of(self, subject_key: str) -> list[StudyDocument]:
        return [StudyDocument.from_document(d) async for d in self._studies.find({STUDY.subject_key: subject_key})]

    async def remove_study(self, study: StudyDocument, at: datetime) -> None:
        tombstone = RemovedStudy(key=study.key, collection_id=study.collection_id, subject_key=study.subject_key,
                                 removed_at=at)
        await self._removed.replace_one({"_id": study.key}, tombstone.to_document(), upsert=True)
        await self._series.delete_many({SERIES.study_key: study.key})
        await self._studies.delete_one({"_id": study.key})

    async def removed_studies_of(self, subject_key: str) -> list[RemovedStudy]:
        return [RemovedStudy.from_document(d) async for d in self._removed.find({REMOVED.subject_key: subject_key})]
