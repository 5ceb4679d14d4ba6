"""The two questions other services ask about datasets (the processing jobs of issue 11, the HTTP API):

* :func:`materialised_path` — where is dataset D's read-only directory, if it may be used at all;
* :func:`holds_open_grant` — does principal P hold an open access grant on dataset D now.

Both read through the :class:`~.ports.DatasetStore` port; neither writes anything nor records an audit
event: the caller records the use (:func:`eucaim_node.datasets.audit.use_datasets`) once it acts on the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from .layout import INDEX, DatasetRoot
from .model import Creation, is_dataset_id, now
from .ports import DatasetStore


class DatasetUnavailable(LookupError):
    """The dataset cannot be used: unknown, not materialised, invalidated, deleted or missing on disk.
    The message says which, in one line (no identifiers beyond the dataset ID)."""


async def materialised_path(store: DatasetStore, root: Path | str, dataset_id: str) -> Path:
    """The directory ``<root>/<dataset_id>`` of a materialised, valid dataset (read-only on disk: mount it
    read-only as well), or :class:`DatasetUnavailable`."""
    if not is_dataset_id(dataset_id):
        raise DatasetUnavailable(f"{dataset_id!r} is not a dataset ID")
    dataset = await store.get(dataset_id)
    if dataset is None:
        raise DatasetUnavailable(f"dataset {dataset_id} does not exist")
    if dataset.deleted:
        raise DatasetUnavailable(f"dataset {dataset_id} was deleted")
    if dataset.invalidated:
        raise DatasetUnavailable(f"dataset {dataset_id} is invalidated ({dataset.invalidation_reason})")
    if dataset.creation is not Creation.DONE:
        raise DatasetUnavailable(f"dataset {dataset_id} is not materialised (creation {dataset.creation.value})")
    path = DatasetRoot(root).dataset_dir(dataset_id)
    if not (path / INDEX).is_file():
        raise DatasetUnavailable(f"dataset {dataset_id} is not on disk under {root}")
    return path


async def holds_open_grant(store: DatasetStore, principal: str, dataset_id: str, *,
                           projects: Iterable[str] = (), at: datetime | None = None) -> bool:
    """True if ``principal`` (a user name), or one of ``projects`` (granted as ``project:<name>``), holds a grant
    on ``dataset_id`` that is open at ``at`` (default: now) and the dataset is usable (materialised, valid).

    An invalidated or deleted dataset has no open access, whatever its grants say (upstream removes the ACLs)."""
    if not is_dataset_id(dataset_id):
        return False
    when = at or now()
    dataset = await store.get(dataset_id)
    if dataset is None or not dataset.usable:
        return False
    grantees = {principal, *(f"project:{p}" for p in projects)}
    return any(g.grantee in grantees and g.open_at(when) for g in await store.grants(dataset_id=dataset_id))


async def open_grant_count(store: DatasetStore, dataset_id: str, at: datetime | None = None) -> int:
    """Grants on the dataset that are not closed and not expired (a future grant counts: access is promised)."""
    when = at or now()
    return sum(1 for g in await store.grants(dataset_id=dataset_id) if g.closed_at is None and g.valid_until > when)
