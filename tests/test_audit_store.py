"""The ledger store on the real FerretDB: leaf indices under concurrent writers, idempotent appends."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime

from eucaim_node.ledger import load_private_key
from eucaim_node.ledger.store import LedgerStore
from eucaim_node.ledger.verify import LedgerVerifier


def record(i: int) -> dict:
    return {"_id": f"r-{i}", "schema": 2, "action": "Test", "recorded_at": datetime(2026, 1, 1, tzinfo=UTC),
            "what": {"system": "EUCAIM-NODE", "code": "test", "display": "Test", "action": "E"}, "detail": {"i": i}}


async def test_two_writers_and_redeliveries_give_one_gap_free_leaf_per_record(stack, tmp_path):
    db_name = f"ledger_concurrency_{uuid.uuid4().hex[:8]}"
    clients = [stack.mongo_client(asynchronous=True, tz_aware=True) for _ in range(2)]
    try:
        stores = [LedgerStore(c[db_name]) for c in clients]
        await stores[0].ensure_indexes()
        # Every record is delivered twice, to both writers, in different orders, concurrently.
        orders = [random.Random(seed).sample(range(120), 120) for seed in (1, 2)]
        results = []

        async def writer(store: LedgerStore, order: list[int]) -> None:
            for i in order:
                results.append(await store.append(record(i)))

        await asyncio.gather(*(writer(s, o) for s, o in zip(stores, orders, strict=True)), writer(stores[0], orders[1][:30]))
        documents = [d async for d in stores[0].records.find({}, sort=[("leaf_index", 1)])]
        assert sorted(d["_id"] for d in documents) == sorted(f"r-{i}" for i in range(120))
        assert [d["leaf_index"] for d in documents] == list(range(120))
        assert sum(r.new for r in results) == 120 and len(results) == 270
        # Every redelivery named the leaf the record already had.
        leaf_of = {d["_id"]: d["leaf_index"] for d in documents}
        assert {r.leaf_index for r in results} == set(leaf_of.values())

        key = load_private_key(tmp_path / "k.pem", generate=True)
        head = await stores[1].sign_head(key, "test/audit", datetime.now(UTC))
        assert head["_id"] == 120 and await stores[0].sign_head(key, "test/audit", datetime.now(UTC)) is None
        verifier = LedgerVerifier(key.public_key(), "test/audit", [head])
        for d in documents:
            verifier.feed(d)
        report = verifier.finish()
        assert report.ok and report.heads_verified == 1 and report.records == 120
    finally:
        await clients[0].drop_database(db_name)
        for c in clients:
            await c.close()


async def test_the_signer_refuses_to_sign_an_edited_record(stack, tmp_path):
    from eucaim_node.ledger.store import LedgerInconsistent

    db_name = f"ledger_refuse_{uuid.uuid4().hex[:8]}"
    client = stack.mongo_client(asynchronous=True, tz_aware=True)
    try:
        store = LedgerStore(client[db_name])
        await store.ensure_indexes()
        for i in range(5):
            await store.append(record(i))
        await store.records.update_one({"leaf_index": 3}, {"$set": {"detail.i": 99}})
        key = load_private_key(tmp_path / "k.pem", generate=True)
        try:
            await store.sign_head(key, "test/audit", datetime.now(UTC))
        except LedgerInconsistent as exc:
            assert "leaf 3" in str(exc)
        else:
            raise AssertionError("a head was signed over an edited record")
        assert await store.heads.count_documents({}) == 0
    finally:
        await client.drop_database(db_name)
        await client.close()
