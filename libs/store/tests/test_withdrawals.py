"""The one withdrawal-list implementation: insert once, the first record stands, look up by key."""

from datetime import UTC, datetime

import pytest
from pymongo.errors import DuplicateKeyError

from eucaim_node.store.collections import ANONYMISATION_WITHDRAWALS, CATALOGUE_WITHDRAWN_SUBJECTS, DATASETS
from eucaim_node.store.withdrawals import MongoWithdrawalList

SUBJECT = "EUCAIM-LOCAL-0123456789abcdef0123"


class UniqueIdCollection:
    """Just what the list uses of a collection, with the unique ``_id`` MongoDB enforces."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: dict[str, dict] = {}

    async def insert_one(self, doc: dict) -> None:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[doc["_id"]] = doc

    async def find_one(self, query: dict, projection: dict | None = None) -> dict | None:
        return self.docs.get(query["_id"])


@pytest.mark.parametrize("collection", [ANONYMISATION_WITHDRAWALS, CATALOGUE_WITHDRAWN_SUBJECTS])
async def test_a_redelivered_withdrawal_leaves_the_first_record_standing(collection):
    stored = UniqueIdCollection(collection)
    withdrawals = MongoWithdrawalList(stored)
    assert not await withdrawals.is_withdrawn(SUBJECT)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    await withdrawals.record(SUBJECT, "event-1", first)
    await withdrawals.record(SUBJECT, "event-2")
    assert await withdrawals.is_withdrawn(SUBJECT)
    assert stored.docs[SUBJECT] == {"_id": SUBJECT, "event_id": "event-1", "withdrawn_at": first}
    assert not await withdrawals.is_withdrawn("EUCAIM-LOCAL-ffffffffffffffffffff")


def test_only_a_collection_of_the_withdrawal_list_can_hold_it():
    with pytest.raises(ValueError, match="not a withdrawal list"):
        MongoWithdrawalList(UniqueIdCollection(DATASETS))
