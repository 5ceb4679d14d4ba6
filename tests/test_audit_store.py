"""The ledger store on the real FerretDB: leaf indices under concurrent writers, idempotent appends."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.ledger import load_private_key
from eucaim_node.ledger.proofs import check_proof, inclusion_proof_document
from eucaim_node.ledger.store import (
    AUDIT_TREE_NODES,
    NODE_INDEX_STATE,
    LedgerStore,
    TreeNodeIndex,
    TreeNodesMismatch,
    node_id,
)
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
        store, index = LedgerStore(db), TreeNodeIndex(db, key.public_key(), origin, batch=700)  # several batches per head
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


ORIGIN = "test/audit"


@contextlib.asynccontextmanager
async def signed_ledger(stack, tmp_path, n: int) -> AsyncIterator[tuple[AsyncDatabase, LedgerStore, Ed25519PrivateKey]]:
    """A fresh database on FerretDB with ``n`` records under one head signed with a new key; dropped afterwards."""
    db_name = f"ledger_nodes_{uuid.uuid4().hex[:8]}"
    client = stack.mongo_client(asynchronous=True, tz_aware=True)
    key = load_private_key(tmp_path / "k.pem", generate=True)
    try:
        db = client[db_name]
        store = LedgerStore(db)
        await store.ensure_indexes()
        await store.append_batch([record(i) for i in range(n)])
        await store.sign_head(key, ORIGIN, datetime.now(UTC))
        yield db, store, key
    finally:
        await client.drop_database(db_name)
        await client.close()


async def test_subtree_hashes_that_do_not_give_the_signed_root_are_never_stored(stack, tmp_path):
    """(a) The index computes the new subtree hashes, checks the root they give against the root the head is
    *signed* over, and only then stores them: a wrong right edge (its state) stores nothing, in any batch."""
    async with signed_ledger(stack, tmp_path, 8) as (db, store, key):
        index = TreeNodeIndex(db, key.public_key(), ORIGIN, batch=2)  # several insert batches per extension
        assert await index.extend() == 8
        stored = await db[AUDIT_TREE_NODES].count_documents({})
        right_edge = (await index.covered()).peaks
        # The planted fault: the index's right edge (the root of leaves 0..7) is wrong.
        await index.state.update_one({"_id": NODE_INDEX_STATE}, {"$set": {"peaks": ["00" * 32]}})
        await store.append_batch([record(i) for i in range(8, 20)])
        await store.sign_head(key, ORIGIN, datetime.now(UTC))
        with pytest.raises(TreeNodesMismatch) as raised:
            await index.extend(store.signed_leaves)
        assert (raised.value.size, raised.value.covered) == (20, 8)
        head = await store.latest_head()
        assert raised.value.signed_root == head["root"] and raised.value.computed_root != head["root"]
        assert await db[AUDIT_TREE_NODES].count_documents({}) == stored, "subtree hashes stored before the check"
        assert (await index.covered()).size == 8

        # The signed note decides, not the head's unsigned `root` field: editing that field changes nothing.
        await index.state.update_one({"_id": NODE_INDEX_STATE}, {"$set": {"peaks": [p.hex() for p in right_edge]}})
        await store.heads.update_one({"_id": 20}, {"$set": {"root": "11" * 32}})
        assert await index.extend(store.signed_leaves) == 20


async def test_the_audit_service_rebuilds_wrong_subtree_hashes_from_the_leaves(stack, tmp_path):
    """(b) A wrong right edge makes the service's index step count the mismatch, store nothing from it and rebuild
    the index from the leaves: a stored hash planted wrong is replaced, and proofs through it verify again."""
    from eucaim_node.audit.adapters.background import HeadSigner
    from eucaim_node.telemetry import metrics

    def counted(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, {"service": "audit", **labels}) or 0.0

    async with signed_ledger(stack, tmp_path, 8) as (db, store, key):
        index = TreeNodeIndex(db, key.public_key(), ORIGIN, batch=2)
        signer = HeadSigner(store, key, ORIGIN, 1.0, None, nodes=index)
        await signer.index_step(index)
        good = (await db[AUDIT_TREE_NODES].find_one({"_id": node_id(2, 0)}))["hash"]
        # The planted faults: a stored subtree hash (leaves 0..3, on the path of leaf 5) and the right edge.
        await db[AUDIT_TREE_NODES].update_one({"_id": node_id(2, 0)}, {"$set": {"hash": "00" * 32}})
        await index.state.update_one({"_id": NODE_INDEX_STATE}, {"$set": {"peaks": ["00" * 32]}})
        proof = await inclusion_proof_document(store, "r-5", ORIGIN, size=8)
        assert check_proof(proof, key.public_key(), ORIGIN) is not None
        mismatches, repaired = counted("eucaim_audit_tree_node_mismatches_total", kind="index"), \
            counted("eucaim_audit_tree_nodes_repaired_total")

        await signer.step()  # nothing new: no head, nothing to index
        await store.append_batch([record(i) for i in range(8, 13)])
        await signer.step()  # signs 13, the extension does not give its root: rebuilt from the leaves

        assert counted("eucaim_audit_tree_node_mismatches_total", kind="index") == mismatches + 1
        assert counted("eucaim_audit_tree_nodes_repaired_total") >= repaired + 1
        assert (await db[AUDIT_TREE_NODES].find_one({"_id": node_id(2, 0)}))["hash"] == good
        assert (await index.covered()).size == 13
        for size in (8, 13):
            proof = await inclusion_proof_document(store, "r-5", ORIGIN, size=size)
            assert check_proof(proof, key.public_key(), ORIGIN) is None


async def test_a_rebuild_stores_nothing_when_the_leaves_themselves_disagree_with_the_signed_head(stack, tmp_path):
    async with signed_ledger(stack, tmp_path, 8) as (db, store, key):
        index = TreeNodeIndex(db, key.public_key(), ORIGIN)
        await index.extend()
        before = {d["_id"]: d["hash"] async for d in db[AUDIT_TREE_NODES].find()}
        await store.records.update_one({"leaf_index": 3}, {"$set": {"leaf_hash": "22" * 32}})
        with pytest.raises(TreeNodesMismatch):
            await index.rebuild()
        assert {d["_id"]: d["hash"] async for d in db[AUDIT_TREE_NODES].find()} == before
        assert before[node_id(0, 3)] != "22" * 32
