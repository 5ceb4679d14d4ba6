"""Reading the catalogue metadata writes: the one port (and its MongoDB adapter) every reader uses.

catalogue-sync (the collection aggregates and the federated search), the dataset resolution, the materialiser's
eForms and the operator's CLI read studies, series and subjects through :class:`CatalogueReader`, as the typed
documents of :mod:`eucaim_node.catalogue.documents`; none reads a catalogue collection by field-name strings of its
own. Where a reader needs only a few fields of many studies (the search's rows, a dataset's study list) it asks
for *rows*: the stored fields it names, each checked against the model, so a renamed field is an error at the
call, not an empty answer.

FerretDB 1.24 (the local stand-in) answers a query on any field but ``_id`` by decoding every document of the
collection (decision 0091): a subject's studies are read by key, from the subject document's study keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.store import collections as names

from .documents import SERIES, STUDY, SUBJECT, SeriesDocument, StudyDocument, SubjectDocument

__all__ = ["CatalogueReader", "MongoCatalogueReader"]


class CatalogueReader(Protocol):
    async def study(self, study_key: str) -> StudyDocument | None: ...

    async def studies(self, study_keys: Iterable[str]) -> list[StudyDocument]:
        """The studies of these keys that exist (read by key), in key order."""

    async def subject(self, subject_key: str) -> SubjectDocument | None: ...

    async def subjects(self, subject_keys: Iterable[str]) -> list[SubjectDocument]:
        """The subjects of these keys that exist."""

    async def subject_studies(self, subject_key: str, collection_id: str | None = None) -> list[StudyDocument]:
        """The subject's studies (in one collection, if given), read by the keys its subject document lists."""

    def all_studies(self) -> AsyncIterator[StudyDocument]:
        """Every study (one pass; for a rebuild at start)."""

    async def study_rows(self, query: dict[str, Any], fields: Iterable[str]) -> list[dict[str, Any]]:
        """The named stored fields (and ``_id``) of every study the MongoDB ``query`` matches; a name that is no
        field of :class:`StudyDocument` is a KeyError."""

    async def series_of(self, study_key: str) -> list[SeriesDocument]: ...

    async def series_keys_of(self, study_keys: Iterable[str]) -> dict[str, list[str]]:
        """Each study's series keys (studies without a catalogued series are left out)."""


class MongoCatalogueReader:
    """:class:`CatalogueReader` over the catalogue's MongoDB collections (read-only)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._studies = db[names.CATALOGUE_STUDIES]
        self._series = db[names.CATALOGUE_SERIES]
        self._subjects = db[names.CATALOGUE_SUBJECTS]

    async def study(self, study_key: str) -> StudyDocument | None:
        doc = await self._studies.find_one({STUDY.key: study_key})
        return None if doc is None else StudyDocument.from_document(doc)

    async def studies(self, study_keys: Iterable[str]) -> list[StudyDocument]:
        found = await asyncio.gather(*(self.study(k) for k in sorted(set(study_keys))))
        return [s for s in found if s is not None]

    async def subject(self, subject_key: str) -> SubjectDocument | None:
        doc = await self._subjects.find_one({SUBJECT.key: subject_key})
        return None if doc is None else SubjectDocument.from_document(doc)

    async def subjects(self, subject_keys: Iterable[str]) -> list[SubjectDocument]:
        return [SubjectDocument.from_document(d)
                async for d in self._subjects.find({SUBJECT.key: {"$in": sorted(set(subject_keys))}})]

    async def subject_studies(self, subject_key: str, collection_id: str | None = None) -> list[StudyDocument]:
        subject = await self.subject(subject_key)
        studies = await self.studies(subject.study_keys if subject else ())
        return [s for s in studies if s.subject_key == subject_key
                and (collection_id is None or s.collection_id == collection_id)]

    async def all_studies(self) -> AsyncIterator[StudyDocument]:
        async for doc in self._studies.find({}):
            yield StudyDocument.from_document(doc)

    async def study_rows(self, query: dict[str, Any], fields: Iterable[str]) -> list[dict[str, Any]]:
        return await self._studies.find(query, STUDY.projection(*fields)).to_list(None)

    async def series_of(self, study_key: str) -> list[SeriesDocument]:
        return [SeriesDocument.from_document(d) async for d in self._series.find({SERIES.study_key: study_key})]

    async def series_keys_of(self, study_keys: Iterable[str]) -> dict[str, list[str]]:
        keys = sorted(set(study_keys))
        found: dict[str, list[str]] = {}
        if keys:
            async for doc in self._series.find({SERIES.study_key: {"$in": keys}}, SERIES.projection(SERIES.study_key)):
                found.setdefault(doc[SERIES.study_key], []).append(doc[SERIES.key])
        return found
