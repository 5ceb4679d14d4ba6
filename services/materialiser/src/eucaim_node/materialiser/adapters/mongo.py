"""MongoDB adapters of the materialiser: command outcomes (its own) and the catalogue's clinical data (read)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

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
        self._subjects = db[names.CATALOGUE_SUBJECTS]
        self._studies = db[names.CATALOGUE_STUDIES]

    async def eforms(self, subjects: list[str]) -> dict[str, dict[str, Any]]:
        forms: dict[str, dict[str, Any]] = {}
        async for doc in self._subjects.find({"_id": {"$in": subjects}}):
            forms[doc["_id"]] = {"sexCodes": doc.get("sex_codes", []),
                                 "ageAtFirstStudyYears": doc.get("age_at_first_study_years"),
                                 "collections": doc.get("collection_ids", [])}
        conditions: dict[str, set[str]] = {}
        async for doc in self._studies.find({"subject_key": {"$in": subjects}}, {"subject_key": 1, "condition_code": 1}):
            conditions.setdefault(doc["subject_key"], set()).add(doc.get("condition_code") or "")
        for subject, codes in conditions.items():
            forms.setdefault(subject, {})["conditionCodes"] = sorted(c for c in codes if c)
        return forms
