"""What the dataset logic needs from storage, as a Protocol (MongoDB adapter: :mod:`.mongo`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from .model import Dataset, Grant


class StaleDataset(RuntimeError):
    """A compare-and-set found the dataset changed since it was read (someone else acted first)."""


class DuplicateDataset(RuntimeError):
    """A dataset with this ID is stored already (an insert repeated after a redelivery)."""


class DatasetStore(Protocol):
    async def get(self, dataset_id: str) -> Dataset | None: ...

    async def by_name(self, name: str) -> list[Dataset]: ...

    async def list(self, **filters: Any) -> list[Dataset]: ...

    async def insert(self, dataset: Dataset) -> None:
        """Store a new dataset; :class:`DuplicateDataset` if its ID exists."""
        ...

    async def update(self, dataset_id: str, expect: dict[str, Any], updates: dict[str, Any]) -> Dataset:
        """Set ``updates`` if the stored document still matches ``expect``; else :class:`StaleDataset`."""
        ...

    async def holding_subject(self, subject: str) -> list[Dataset]: ...

    async def add_grant(self, grant: Grant) -> None: ...

    async def get_grant(self, grant_id: str) -> Grant | None: ...

    async def grants(self, dataset_id: str | None = None, grantee: str | None = None) -> list[Grant]: ...

    async def close_grant(self, grant_id: str, *, at: datetime, by: str) -> Grant:
        """Close an open grant (idempotence is the caller's: closing a closed grant is :class:`StaleDataset`)."""
        ...
