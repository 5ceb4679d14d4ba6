"""A dataset as the dataset-service's REST API shows it (``GET /api/datasets``, ``GET /api/datasets/{id}``;
field names from chaimeleon-eu/dataset-service API-reference-v1.yaml and RESTServer.py), so EUCAIM tooling reads
ours. Counts and hashes only: the per-subject study list stays on the node (it is in ``index.json`` for jobs)."""

from __future__ import annotations

from typing import Any

from .model import Creation, Dataset, State


def summary(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "version": str(dataset.version),
        "authorName": dataset.author,
        "creationDate": dataset.created_at.isoformat(),
        "project": dataset.project,
        "draft": dataset.state is State.DRAFT,
        "public": dataset.state is State.PUBLISHED,
        "invalidated": dataset.invalidated,
        "studiesCount": len(dataset.studies),
        "subjectsCount": len(dataset.subjects),
    }


def detail(dataset: Dataset) -> dict[str, Any]:
    hashes = dataset.hashes
    return {
        **summary(dataset),
        "description": dataset.description,
        "license": {"title": dataset.licence or "", "url": dataset.licence or ""},
        "purposes": [dataset.purpose] if dataset.purpose else [],
        "previousId": dataset.previous_id,
        "nextId": dataset.next_id,
        "invalidationReason": dataset.invalidation_reason,
        "creating": dataset.creation in (Creation.PENDING, Creation.RUNNING),
        "creationStatus": {"status": dataset.creation.value, "lastMessage": dataset.creation_error or ""},
        "collections": list(dataset.collections),
        "sizeInBytes": hashes.bytes if hashes else None,
        "hash": {"index": hashes.index, "images": hashes.images, "clinicalData": hashes.clinical} if hashes else None,
    }
