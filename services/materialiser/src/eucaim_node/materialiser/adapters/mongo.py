"""MongoDB adapters of the materialiser: command outcomes (its own) and the catalogue's clinical data (read)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.catalogue.documents import STUDY
from eucaim_node.catalogue.reader import MongoCatalogueReader
from eucaim_node.datasets.model import now
from eucaim_node.store import collections as names
from eucaim_node.store import insert_once


class MongoOutcomes:
    def __init__(self, db: AsyncDatabase) -> None:
        self._outcomes = db[names.DATASET_COMMANDS]

    async def get(self, command_id: str) -> dict[str, Any] | None:
        return await self._outcomes.find_one({"_id": command_id})

    async def record(self, command_id: str, *, ok: bool, message: str, dataset_id: str) -> None:
        await insert_once(self._outcomes, {"_id": command_id, "ok": ok, "message": message, "dataset_id": dataset_id,
                                           "at": now()})


class CatalogueClinicalData:
    """eForm of a subject: what the catalogue holds about them, all de-identified (sex code, age at first study,
    collections, conditions, modalities); the dataset-service leaves the eForm's structure to the node."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._catalogue = MongoCatalogueReader(db)

    async def eforms(self, subjects: list[str]) -> dict[str, dict[str, Any]]:
        forms: dict[str, dict[str, Any]] = {}
        for subject in await self._catalogue.subjects(subjects):
            forms[subject.key] = {"sexCodes": subject.sex_codes, "ageAtFirstStudyYears": subject.age_at_first_study_years,
                                  "collections": subject.collection_ids}
        conditions: dict[str, set[str]] = {}
        for row in await self._catalogue.study_rows({STUDY.subject_key: {"$in": subjects}},
                                                    (STUDY.subject_key, STUDY.condition_code)):
            conditions.setdefault(row[STUDY.subject_key], set()).add(row.get(STUDY.condition_code) or "")
        for subject, codes in conditions.items():
            forms.setdefault(subject, {})["conditionCodes"] = sorted(c for c in codes if c)
        return forms
