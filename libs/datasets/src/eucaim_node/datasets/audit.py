"""Audit records of dataset acts, with the EUCAIM tracing-service action names (EUCAIM/tracing-service,
app/models/v2/common_types.py): CREATE_DATASET, UPDATE_DATASET (detail RELEASE, PUBLISH, INVALIDATE, REACTIVATE),
USE_DATASETS. They travel as ``AccessRecorded`` events on ``eucaim.access.v1``; the audit service makes each a
ledger leaf. Targets are dataset IDs; details carry counts and reasons, never a subject or study identifier."""

from __future__ import annotations

from typing import Any

from eucaim_node.events import AccessRecorded

CREATE_DATASET = "CREATE_DATASET"
UPDATE_DATASET = "UPDATE_DATASET"
USE_DATASETS = "USE_DATASETS"
DELETE_DATASET = "DELETE_DATASET"
#: Details of UPDATE_DATASET this node uses beyond the four acts.
GRANT_ACCESS = "GRANT_ACCESS"
CLOSE_ACCESS = "CLOSE_ACCESS"
MATERIALISED = "MATERIALISED"


def record(*, producer: str, actor: str, action: str, dataset_id: str, cause: str, outcome: str = "success",
           **detail: Any) -> AccessRecorded:
    """One audit record; ``cause`` makes its event ID (the same act recorded twice is one leaf)."""
    return AccessRecorded.create(cause=cause, producer=producer, actor=actor, action=action, target=dataset_id,
                                 outcome=outcome, detail={k: v for k, v in detail.items() if v is not None})


def use_datasets(*, producer: str, actor: str, dataset_ids: list[str], cause: str, outcome: str = "success",
                 **detail: Any) -> AccessRecorded:
    """USE_DATASETS: a principal used (or was refused, ``outcome="denied"``) one or more datasets, e.g. a job."""
    return AccessRecorded.create(cause=cause, producer=producer, actor=actor, action=USE_DATASETS,
                                 target=",".join(dataset_ids), outcome=outcome,
                                 detail={"datasets": ",".join(dataset_ids),
                                         **{k: v for k, v in detail.items() if v is not None}})
