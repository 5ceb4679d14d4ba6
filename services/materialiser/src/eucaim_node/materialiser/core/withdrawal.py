"""Consent withdrawal in datasets: every version holding the subject is invalidated with reason ``withdrawal``, its
files are removed from disk, and (if it had no successor yet) a draft successor without the subject is created
for the data manager to release. Idempotent: the successor's ID derives from the version and the subject."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eucaim_node.datasets import audit
from eucaim_node.datasets.lifecycle import WITHDRAWAL
from eucaim_node.datasets.model import Creation, Dataset, State
from eucaim_node.datasets.ports import DatasetStore, DuplicateDataset, StaleDataset
from eucaim_node.events import AccessRecorded, WithdrawalRequested

from .materialise import Materialiser

log = logging.getLogger("eucaim_node.materialiser.withdrawal")
PRODUCER = "materialiser"


def successor_id(dataset_id: str, subject: str) -> str:
    """A UUID v4-shaped ID determined by the version and the withdrawn subject (the same on every redelivery)."""
    digest = bytearray(hashlib.sha256(f"successor\x1f{dataset_id}\x1f{subject}".encode()).digest()[:16])
    return str(uuid.UUID(bytes=bytes(digest), version=4))


@dataclass
class WithdrawalHandler:
    store: DatasetStore
    materialiser: Materialiser
    publish: Callable[[AccessRecorded], Awaitable[None]]
    wake: Callable[[], None] = lambda: None

    async def withdraw(self, event: WithdrawalRequested) -> None:
        subject = event.subject_key
        for dataset in await self.store.holding_subject(subject):
            await self._invalidate(dataset, event)
            await self.materialiser.discard(await self.store.get(dataset.id) or dataset)
            await self._successor(dataset, event)
        self.wake()

    async def _invalidate(self, dataset: Dataset, event: WithdrawalRequested) -> None:
        if not (dataset.invalidated and dataset.invalidation_reason == WITHDRAWAL):
            try:
                await self.store.update(dataset.id, {"invalidated": dataset.invalidated},
                                        {"invalidated": True, "invalidation_reason": WITHDRAWAL})
            except StaleDataset:
                fresh = await self.store.get(dataset.id)
                if fresh is None or not fresh.invalidated:
                    raise
                await self.store.update(dataset.id, {"invalidated": True},
                                        {"invalidation_reason": WITHDRAWAL})
        await self.publish(audit.record(producer=PRODUCER, actor=PRODUCER, action=audit.UPDATE_DATASET,
                                        dataset_id=dataset.id, cause=f"withdrawal:{event.event_id}:{dataset.id}",
                                        operation="INVALIDATE", reason=WITHDRAWAL))

    async def _successor(self, dataset: Dataset, event: WithdrawalRequested) -> None:
        new_id = successor_id(dataset.id, event.subject_key)
        if dataset.next_id not in (None, new_id):
            return  # one successor each: the existing successor holds the subject too and gets its own
        remaining = tuple(s for s in dataset.studies if s.subject != event.subject_key)
        if not remaining:
            log.info("withdrawal left a dataset empty: no successor", extra={"dataset": dataset.id})
            return
        successor = Dataset(
            id=new_id, name=dataset.name, description=dataset.description, project=dataset.project,
            licence=dataset.licence, purpose=dataset.purpose, author=PRODUCER,
            provenance={**dataset.provenance, "successor_of": dataset.id, "reason": WITHDRAWAL},
            studies=remaining, version=dataset.version + 1, previous_id=dataset.id, state=State.DRAFT,
            creation=Creation.PENDING)
        try:
            await self.store.insert(successor)
        except DuplicateDataset:
            pass
        if dataset.next_id is None:
            try:
                await self.store.update(dataset.id, {"next_id": None}, {"next_id": new_id})
            except StaleDataset:
                pass
        await self.publish(audit.record(producer=PRODUCER, actor=PRODUCER, action=audit.CREATE_DATASET,
                                        dataset_id=new_id, cause=f"successor:{new_id}", previous=dataset.id,
                                        reason=WITHDRAWAL, studies=len(remaining), version=successor.version))
