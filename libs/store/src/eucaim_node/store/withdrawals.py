"""The withdrawal list: pseudonymous keys of subjects who withdrew consent, one document per subject.

Each service that enforces withdrawals (anonymisation before releasing, metadata before indexing) keeps
its own copy in its own collection (:data:`~eucaim_node.store.collections.WITHDRAWAL_LIST`), written from
the same ``WithdrawalRequested`` event, so neither needs the other's database rights. Both use this one
implementation: insert once (a redelivered request leaves the first record standing), look up by key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from .collections import WITHDRAWAL_LIST


class MongoWithdrawalList:
    """One copy of the list; the caller names the collection (``db[ANONYMISATION_WITHDRAWALS]``), so the access
    tests attribute it to the caller's database user."""

    def __init__(self, collection: AsyncCollection) -> None:
        if collection.name not in WITHDRAWAL_LIST:
            raise ValueError(f"{collection.name!r} is not a withdrawal list; those are: {', '.join(WITHDRAWAL_LIST)}")
        self._coll = collection

    async def record(self, subject_key: str, event_id: str, at: datetime | None = None) -> None:
        """Record the withdrawal of ``subject_key`` (the requesting event's ID, and when); idempotent."""
        try:
            await self._coll.insert_one({"_id": subject_key, "event_id": event_id, "withdrawn_at": at or datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # withdrawn already: the first record stands

    async def is_withdrawn(self, subject_key: str) -> bool:
        return await self._coll.find_one({"_id": subject_key}, {"_id": 1}) is not None
