"""DatasetAccess over the datasets library (issue 10): its materialised path and its grant check."""

from __future__ import annotations

from pathlib import Path

from eucaim_node.datasets import DatasetStore, DatasetUnavailable, holds_open_grant, materialised_path

from ...ports import UnknownDataset


class LibraryDatasetAccess:
    def __init__(self, store: DatasetStore, root: Path) -> None:
        self.store, self.root = store, root

    async def resolve(self, dataset_id: str) -> Path:
        try:
            return await materialised_path(self.store, self.root, dataset_id)
        except DatasetUnavailable as exc:
            raise UnknownDataset(str(exc)) from None

    async def holds_open_grant(self, principal: str, dataset_id: str) -> bool:
        return await holds_open_grant(self.store, principal, dataset_id)
