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


async def test_proofs_read_log_n_stored_subtree_hashes_and_tampering_is_still_caught(stack, tmp_path):
    """3,000 records bulk-appended in batches on FerretDB, heads signed, subtree hashes stored by TreeNodeIndex:
    every proof verifies, reads at most 2·log2 n hashes in one round trip, the index resumes after more records,
    and an edited record or a forged stored subtree hash is caught (by verify, by the proof's own check)."""
    import math

    from eucaim_node.ledger.merkle import CompactTree
    from eucaim_node.ledger.ports import CountingReader
    from eucaim_node.ledger.proofs import check_proof, consistency_proof_document, inclusion_proof_document
    from eucaim_node.ledger.store import AUDIT_TREE_NODES, MongoLedgerReader, TreeNodeIndex, node_id
    from eucaim_node.ledger.verify import verify_ledger

    db_name = f"ledger_nodes_{uuid.uuid4().hex[:8]}"
    client = stack.mongo_client(asynchronous=True, tz_aware=True)
    key = load_private_key(tmp_path / "k.pem", generate=True)
    origin = "test/audit"
    try:
        db = client[db_name]
        store, index = LedgerStore(db), TreeNodeIndex(db, batch=700)  # several index batches per head
        await store.ensure_indexes()
        for start in range(0, 2000, 500):
            assert await store.append_batch([record(i) for i in range(start, start + 500)]) == 500
        assert await store.append_batch([record(5), record(2000)]) == 1  # a redelivery inside a batch: one new leaf
        await store.sign_head(key, origin, datetime.now(UTC))
        assert await index.extend() == 2001 and await index.extend() == 2001
        await store.append_batch([record(i) for i in range(2001, 3000)])
        await store.sign_head(key, origin, datetime.now(UTC))
        assert store.signed_leaves[0] == 2001 and len(store.signed_leaves[1]) == 999
        assert await index.extend(store.signed_leaves) == 3000  # resumed from its state with the signer's leaves
        tree, completed = CompactTree(), []
        for d in [d async for d in store.records.find({}, sort=[("leaf_index", 1)])]:
            completed.append((0, d["leaf_index"], bytes.fromhex(d["leaf_hash"])))
            tree.append(bytes.fromhex(d["leaf_hash"]), completed)
        stored = {d["_id"]: d["hash"] async for d in db[AUDIT_TREE_NODES].find()}
        assert stored == {node_id(level, i): h.hex() for level, i, h in completed}

        reader = CountingReader(MongoLedgerReader(db))
        report = await verify_ledger(reader, key.public_key(), origin)
        assert report.ok and report.records == 3000 and report.heads_verified == 2
        bound = 2 * math.ceil(math.log2(3000))
        for i in (0, 1, 777, 2000, 2999):
            reader.reset()
            proof = await inclusion_proof_document(reader, f"r-{i}", origin)
            assert check_proof(proof, key.public_key(), origin) is None and proof["tree_size"] == 3000
            assert reader.port_calls == 1 and reader.hashes_read <= bound, (i, reader.hashes_read)
        proof = await inclusion_proof_document(reader, "r-100", origin, size=2001)
        assert check_proof(proof, key.public_key(), origin) is None
        assert check_proof(await consistency_proof_document(reader, 2001, 3000, origin), key.public_key(), origin) is None

        # A forged stored subtree hash yields a proof that does not verify (prove then says so and exits 1).
        await db[AUDIT_TREE_NODES].update_one({"_id": node_id(10, 1)}, {"$set": {"hash": "00" * 32}})
        proof = await inclusion_proof_document(reader, "r-5", origin)
        assert check_proof(proof, key.public_key(), origin) == "inclusion proof does not lead to the tree head's root"
        # An edited record is found by verify, which never reads the stored subtree hashes.
        await store.records.update_one({"leaf_index": 1500}, {"$set": {"detail.i": -1}})
        report = await verify_ledger(reader, key.public_key(), origin)
        assert not report.ok and (report.first().kind, report.first().leaf) == ("edited", 1500)
    finally:
        await client.drop_database(db_name)
        await client.close()
