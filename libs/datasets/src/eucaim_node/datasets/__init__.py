"""EUCAIM Tier 3 datasets: model, lifecycle, grants, layout, integrity, and the store port and its MongoDB adapter.

Other services import this library, never the materialiser service: :func:`materialised_path` and
:func:`holds_open_grant` are the entry points for processing jobs (see API-FOR-JOBS in docs/datasets.md).
"""

from .access import DatasetUnavailable, holds_open_grant, materialised_path, open_grant_count
from .layout import DatasetRoot
from .lifecycle import WITHDRAWAL, Act, IllegalTransition, plan
from .model import Creation, Dataset, Grant, Hashes, State, StudyRef, is_dataset_id, new_dataset_id
from .mongo import MongoDatasetStore
from .ports import DatasetStore, DuplicateDataset, StaleDataset

__all__ = [
    "Act", "Creation", "Dataset", "DatasetRoot", "DatasetStore", "DatasetUnavailable", "DuplicateDataset", "Grant", "Hashes",
    "IllegalTransition", "MongoDatasetStore", "State", "StaleDataset", "StudyRef", "WITHDRAWAL", "holds_open_grant",
    "is_dataset_id", "materialised_path", "new_dataset_id", "open_grant_count", "plan",
]
