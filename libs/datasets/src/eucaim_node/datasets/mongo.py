"""The dataset store over MongoDB (``datasets``, ``dataset_grants``): single-document atomic writes only, so
FerretDB 1.24 serves it too (no transactions). State changes are compare-and-set on the fields they depend on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.store import collections as names

from .model import Dataset, Grant
from .ports import DuplicateDataset, StaleDataset


def _mongo_value(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="python")
    if isinstance(value, StrEnum):
        return value.value
    return value


class MongoDatasetStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._datasets = db[names.DATASETS]
        self._grants = db[names.DATASET_GRANTS]

    async def get(self, dataset_id: str) -> Dataset | None:
        doc = await self._datasets.find_one({"_id": dataset_id})
        return Dataset.from_document(doc) if doc else None

    async def by_name(self, name: str) -> list[Dataset]:
        return [Dataset.from_document(d) async for d in self._datasets.find({"name": name})]

    async def list(self, **filters: Any) -> list[Dataset]:
        query = {k: _mongo_value(v) for k, v in filters.items()}
        found = [Dataset.from_document(d) async for d in self._datasets.find(query)]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    async def insert(self, dataset: Dataset) -> None:
        try:
            await self._datasets.insert_one(dataset.to_document())
        except DuplicateKeyError:
            raise DuplicateDataset(dataset.id) from None

    async def update(self, dataset_id: str, expect: dict[str, Any], updates: dict[str, Any]) -> Dataset:
        query = {"_id": dataset_id, **{k: _mongo_value(v) for k, v in expect.items()}}
        doc = await self._datasets.find_one_and_update(
            query, {"$set": {k: _mongo_value(v) for k, v in updates.items()}}, return_document=ReturnDocument.AFTER)
        if doc is None:
            raise StaleDataset(f"dataset {dataset_id} changed meanwhile (or does not exist); read it again")
        return Dataset.from_document(doc)

    async def holding_subject(self, subject: str) -> list[Dataset]:
        return await self.list(subjects=subject)

    async def add_grant(self, grant: Grant) -> None:
        await self._grants.insert_one(grant.to_document())

    async def get_grant(self, grant_id: str) -> Grant | None:
        doc = await self._grants.find_one({"_id": grant_id})
        return Grant.from_document(doc) if doc else None

    async def grants(self, dataset_id: str | None = None, grantee: str | None = None) -> list[Grant]:
        query: dict[str, Any] = {}
        if dataset_id is not None:
            query["dataset_id"] = dataset_id
        if grantee is not None:
            query["grantee"] = grantee
        found = [Grant.from_document(d) async for d in self._grants.find(query)]
        return sorted(found, key=lambda g: (g.granted_at, g.id))

    async def close_grant(self, grant_id: str, *, at: datetime, by: str) -> Grant:
        doc = await self._grants.find_one_and_update(
            {"_id": grant_id, "closed_at": None}, {"$set": {"closed_at": at, "closed_by": by}},
            return_document=ReturnDocument.AFTER)
        if doc is None:
            raise StaleDataset(f"grant {grant_id} does not exist or is already closed")
        return Grant.from_document(doc)
