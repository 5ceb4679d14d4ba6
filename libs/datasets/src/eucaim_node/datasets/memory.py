"""An in-process DatasetStore with the MongoDB adapter's compare-and-set semantics, for unit tests (here and in
services that use datasets, e.g. processing jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .model import Dataset, Grant
from .ports import DuplicateDataset, StaleDataset


class MemoryStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.grant_docs: dict[str, Grant] = {}

    async def get(self, dataset_id: str) -> Dataset | None:
        doc = self.docs.get(dataset_id)
        return Dataset.from_document(doc) if doc else None

    async def by_name(self, name: str) -> list[Dataset]:
        return [Dataset.from_document(d) for d in self.docs.values() if d["name"] == name]

    async def list(self, **filters: Any) -> list[Dataset]:
        return [Dataset.from_document(d) for d in self.docs.values()
                if all(d.get(k) == v or (isinstance(d.get(k), list) and v in d[k]) for k, v in filters.items())]

    async def insert(self, dataset: Dataset) -> None:
        if dataset.id in self.docs:
            raise DuplicateDataset(dataset.id)
        self.docs[dataset.id] = dataset.to_document()

    async def update(self, dataset_id: str, expect: dict[str, Any], updates: dict[str, Any]) -> Dataset:
        doc = self.docs.get(dataset_id)
        plain = {k: getattr(v, "value", v) for k, v in expect.items()}
        if doc is None or any(getattr(doc.get(k), "value", doc.get(k)) != v for k, v in plain.items()):
            raise StaleDataset(dataset_id)
        doc.update({k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in updates.items()})
        return Dataset.from_document(doc)

    async def holding_subject(self, subject: str) -> list[Dataset]:
        return await self.list(subjects=subject)

    async def add_grant(self, grant: Grant) -> None:
        self.grant_docs[grant.id] = grant

    async def get_grant(self, grant_id: str) -> Grant | None:
        return self.grant_docs.get(grant_id)

    async def grants(self, dataset_id: str | None = None, grantee: str | None = None) -> list[Grant]:
        return [g for g in self.grant_docs.values() if dataset_id in (None, g.dataset_id) and grantee in (None, g.grantee)]

    async def close_grant(self, grant_id: str, *, at: datetime, by: str) -> Grant:
        grant = self.grant_docs.get(grant_id)
        if grant is None or grant.closed_at is not None:
            raise StaleDataset(grant_id)
        self.grant_docs[grant_id] = grant.model_copy(update={"closed_at": at, "closed_by": by})
        return self.grant_docs[grant_id]
