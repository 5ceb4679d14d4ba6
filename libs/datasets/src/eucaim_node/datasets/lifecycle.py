"""The dataset state machine: which operator acts are legal from which state, and what each changes.

From the dataset-service README ("Dataset states"): a draft is released (it can no longer change), a released
version is published (listed in the catalogue); any version can be invalidated with a reason and reactivated by an
operator. Two rules of this node: a version whose files were removed because a subject withdrew consent
(reason :data:`WITHDRAWAL`) is never reactivated (its successor is the way forward), and only a materialised,
valid version can be released.

Each act returns the fields to set and the *expected* current values, so the store applies it as one
compare-and-set (a concurrent act by someone else makes it fail instead of overwriting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from .model import Creation, Dataset, State

#: Invalidation reason of a version that held a subject who withdrew consent.
WITHDRAWAL = "withdrawal"


class Act(StrEnum):
    """Operator acts; the values are the EUCAIM tracing-service details of UPDATE_DATASET."""

    RELEASE = "RELEASE"
    PUBLISH = "PUBLISH"
    INVALIDATE = "INVALIDATE"
    REACTIVATE = "REACTIVATE"


class IllegalTransition(ValueError):
    """The act is not allowed from the dataset's current state; the message says why, in one line."""


@dataclass(frozen=True)
class Change:
    """What an act sets (``updates``) provided the stored document still has ``expect``."""

    act: Act
    expect: dict[str, Any]
    updates: dict[str, Any]

    def describe(self, dataset: Dataset) -> str:
        after = {**{"state": dataset.state.value, "invalidated": dataset.invalidated}, **{
            k: (v.value if isinstance(v, StrEnum) else v) for k, v in self.updates.items()}}
        label = "invalidated" if after["invalidated"] else after["state"]
        return f"{self.act.value.lower()}: dataset {dataset.id} is now {label}"


def _guard(dataset: Dataset) -> dict[str, Any]:
    return {"state": dataset.state.value, "invalidated": dataset.invalidated, "deleted": False}


def plan(dataset: Dataset, act: Act, *, at: datetime, reason: str | None = None) -> Change:
    """The change ``act`` makes to ``dataset``, or :class:`IllegalTransition`."""
    if dataset.deleted:
        raise IllegalTransition(f"dataset {dataset.id} was deleted")
    expect = _guard(dataset)
    if act is Act.INVALIDATE:
        if dataset.invalidated:
            raise IllegalTransition(f"dataset {dataset.id} is already invalidated ({dataset.invalidation_reason})")
        if not reason or not reason.strip():
            raise IllegalTransition("invalidation needs a reason (--reason)")
        return Change(act, expect, {"invalidated": True, "invalidation_reason": reason.strip()})
    if act is Act.REACTIVATE:
        if not dataset.invalidated:
            raise IllegalTransition(f"dataset {dataset.id} is not invalidated")
        if dataset.invalidation_reason == WITHDRAWAL:
            raise IllegalTransition(f"dataset {dataset.id} was invalidated by a consent withdrawal and its files are "
                                    f"gone; release its successor {dataset.next_id or '(none)'} instead")
        return Change(act, expect, {"invalidated": False, "invalidation_reason": None})
    if dataset.invalidated:
        raise IllegalTransition(f"dataset {dataset.id} is invalidated ({dataset.invalidation_reason}); "
                                "reactivate it first")
    if act is Act.RELEASE:
        if dataset.state is not State.DRAFT:
            raise IllegalTransition(f"dataset {dataset.id} is {dataset.state.value}, not a draft: a released version "
                                    "never changes")
        if dataset.creation is not Creation.DONE:
            raise IllegalTransition(f"dataset {dataset.id} is not materialised yet (creation {dataset.creation.value})")
        return Change(act, {**expect, "creation": Creation.DONE.value}, {"state": State.RELEASED, "released_at": at})
    if act is Act.PUBLISH:
        if dataset.state is not State.RELEASED:
            raise IllegalTransition(f"dataset {dataset.id} is {dataset.state.value}: only a released version can be "
                                    "published")
        return Change(act, expect, {"state": State.PUBLISHED, "published_at": at})
    raise IllegalTransition(f"unknown act {act}")  # pragma: no cover - Act is closed


def may_delete(dataset: Dataset, open_grants: int) -> None:
    """Delete is for drafts and failed creations, never while a grant is open (dataset-service: refused while an
    access is open); a released version is invalidated instead, so its identifier keeps meaning one content."""
    if dataset.deleted:
        raise IllegalTransition(f"dataset {dataset.id} is already deleted")
    if open_grants:
        raise IllegalTransition(f"dataset {dataset.id} has {open_grants} open access grant(s): revoke them first")
    if dataset.state is not State.DRAFT:
        raise IllegalTransition(f"dataset {dataset.id} is {dataset.state.value}: only a draft or a failed creation "
                                "can be deleted (invalidate a released version)")
