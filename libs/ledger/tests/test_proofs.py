"""Proofs from stored subtree hashes (proofs.py, decision 0115): the same RFC 9162 paths as from every leaf, in
O(log n) hash reads counted through an instrumented reader port, and checked before anyone relies on them."""

from __future__ import annotations

import base64
import json
import math
import random
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.ledger import make_checkpoint, record_leaf_hash
from eucaim_node.ledger.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    perfect_nodes,
    root,
    verify_consistency,
    verify_inclusion,
)
from eucaim_node.ledger.ports import CountingReader
from eucaim_node.ledger.proofs import (
    ProofUnavailable,
    check_proof,
    consistency_path,
    consistency_proof_document,
    inclusion_path,
    inclusion_proof_document,
)
from eucaim_node.ledger.proofs import consistency_proof as consistency_proof_checked
from eucaim_node.ledger.proofs import inclusion_proof as inclusion_proof_checked
from eucaim_node.ledger.verify import verify_ledger

from .memory_ledger import MemoryLedger

ORIGIN = "node.example/audit"


def hashes(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100])
async def test_paths_from_stored_subtrees_equal_the_paths_from_every_leaf(n):
    leaves = hashes(n)
    # fully indexed, indexed up to an earlier head, and not indexed at all (a ledger from before the index)
    for indexed in {n, n // 2, 0}:
        ledger = MemoryLedger(leaves, indexed=indexed)
        for index in range(n):
            assert await inclusion_path(ledger, index, n) == inclusion_proof(index, leaves)
        for first in range(1, n + 1):
            assert await consistency_path(ledger, first, n) == consistency_proof(first, leaves)
        for size in range(1, n + 1):  # proofs against an older, smaller head use the same stored subtrees
            assert await inclusion_path(ledger, size - 1, size) == inclusion_proof(size - 1, leaves[:size])


def test_a_subtree_splits_into_aligned_perfect_subtrees_largest_first():
    assert perfect_nodes(0, 8) == [(3, 0)]
    assert perfect_nodes(8, 13) == [(2, 2), (0, 12)]
    assert perfect_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]
    for start, end in [(0, 100), (64, 100), (96, 100)]:
        nodes = perfect_nodes(start, end)
        assert sum(1 << level for level, _ in nodes) == end - start
        # Contiguous and in order: each node starts where the previous one ended, the first at ``start``.
        starts = [index << level for level, index in nodes]
        assert starts == [start] + [s + (1 << level) for s, (level, _) in zip(starts, nodes, strict=False)][:-1]


@pytest.mark.parametrize("n", [1000, 10_000, 100_000])
async def test_a_proof_reads_at_most_2_log2_n_hashes_in_one_port_call(n):
    memory = MemoryLedger(hashes(n))
    ledger = CountingReader(memory)
    bound = 2 * math.ceil(math.log2(n))
    head = root(memory.hashes)
    for index in random.Random(n).sample(range(n), 40) + [0, n - 1]:
        ledger.reset()
        path = await inclusion_path(ledger, index, n)
        assert ledger.port_calls == 1 and ledger.hashes_read <= bound, (index, ledger.hashes_read)
        verify_inclusion(index, n, memory.hashes[index], path, head)
    for first in random.Random(-n).sample(range(1, n), 20):
        ledger.reset()
        await consistency_path(ledger, first, n)
        assert ledger.port_calls == 1 and ledger.hashes_read <= bound, (first, ledger.hashes_read)


async def test_without_the_index_the_unindexed_tail_is_read_from_the_leaves():
    leaves = hashes(1000)
    ledger = CountingReader(MemoryLedger(leaves, indexed=992))  # the service indexed up to its last head
    path = await inclusion_path(ledger, 995, 1000)
    assert path == inclusion_proof(995, leaves) and ledger.hashes_read <= 2 * 10 + 8


async def test_a_tampered_stored_subtree_gives_a_proof_that_does_not_verify():
    leaves = hashes(100)
    ledger = MemoryLedger(leaves)
    ledger.stored[(5, 1)] = leaf_hash(b"forged")  # leaves 32..63: on the path of leaf 3
    with pytest.raises(ProofError):
        verify_inclusion(3, 100, leaves[3], await inclusion_path(ledger, 3, 100), root(leaves))
    with pytest.raises(ProofError):
        verify_consistency(32, 100, root(leaves[:32]), root(leaves), await consistency_path(ledger, 32, 100))


def signed_ledger(n: int, key: Ed25519PrivateKey, head_sizes: list[int]) -> MemoryLedger:
    records = []
    for i in range(n):
        record = {"_id": f"r-{i}", "action": "Test", "recorded_at": datetime(2026, 1, 1, tzinfo=UTC), "detail": {"i": i},
                  "leaf_index": i}
        record["leaf_hash"] = record_leaf_hash(record).hex()
        records.append(record)
    leaves = [bytes.fromhex(r["leaf_hash"]) for r in records]
    heads = [{"_id": s, "note": make_checkpoint(ORIGIN, s, root(leaves[:s])).sign(key)} for s in head_sizes]
    return MemoryLedger(leaves, records=records, heads=heads)


async def test_proof_documents_verify_offline_and_an_edited_record_does_not():
    key = Ed25519PrivateKey.generate()
    ledger = signed_ledger(37, key, [20, 37])
    proof = await inclusion_proof_document(ledger, "r-25", ORIGIN)
    assert (proof["leaf_index"], proof["tree_size"]) == (25, 37)
    assert check_proof(proof, key.public_key(), ORIGIN) is None
    record = json.loads(base64.b64decode(proof["record"]))
    record["detail"]["i"] = 99
    forged = {**proof, "record": base64.b64encode(json.dumps(record).encode()).decode()}
    assert check_proof(forged, key.public_key(), ORIGIN) == "the record does not hash to the leaf hash"
    assert check_proof(proof, Ed25519PrivateKey.generate().public_key(), ORIGIN) is not None
    consistency = await consistency_proof_document(ledger, 20, 37, ORIGIN)
    assert check_proof(consistency, key.public_key(), ORIGIN) is None
    consistency["path"][0] = "00" * 32
    assert check_proof(consistency, key.public_key(), ORIGIN) is not None


async def test_a_wrong_stored_subtree_hash_no_longer_makes_every_proof_through_it_fail():
    key = Ed25519PrivateKey.generate()
    ledger = signed_ledger(37, key, [20, 37])
    good = ledger.stored[(4, 0)]
    ledger.stored[(4, 0)] = b"\x00" * 32  # leaves 0..15: on the path of leaf 30 and in PROOF(20, 37)
    assert check_proof(await inclusion_proof_document(ledger, "r-30", ORIGIN), key.public_key(), ORIGIN) is not None
    proof = await inclusion_proof_checked(ledger, "r-30", ORIGIN, key.public_key())
    assert check_proof(proof.document, key.public_key(), ORIGIN) is None
    assert proof.stale == {(4, 0): good}, "the wrong stored hash was not named with its value from the leaves"
    consistency = await consistency_proof_checked(ledger, 20, 37, ORIGIN, key.public_key())
    assert check_proof(consistency.document, key.public_key(), ORIGIN) is None and consistency.stale == {(4, 0): good}
    # A proof the stored hashes get right (leaf 3's path lies beside leaves 0..15) reads no leaf and names nothing.
    counted = CountingReader(ledger)
    untouched = await inclusion_proof_checked(counted, "r-3", ORIGIN, key.public_key())
    assert untouched.stale == {} and counted.port_calls == 1  # the one read of stored hashes, no leaf range


async def test_when_the_leaves_disagree_with_the_signed_head_nothing_is_called_stale():
    key = Ed25519PrivateKey.generate()
    ledger = signed_ledger(37, key, [37])
    ledger.hashes[9] = leaf_hash(b"edited")  # the stored leaf hash itself, as an edited ledger would have it
    ledger.stored[(0, 9)] = ledger.hashes[9]
    ledger.stored[(3, 1)] = b"\x00" * 32  # leaves 8..15, on leaf 3's path: the stored path fails, so do the leaves
    proof = await inclusion_proof_checked(ledger, "r-3", ORIGIN, key.public_key())
    assert proof.stale == {} and check_proof(proof.document, key.public_key(), ORIGIN) is not None


async def test_a_proof_reads_its_heads_by_key_never_the_list_of_every_head():
    """One head per signing interval makes hundreds of thousands a year: a proof reads the one it needs."""
    key = Ed25519PrivateKey.generate()
    ledger = signed_ledger(37, key, [20, 30, 37])

    async def every_head():
        raise AssertionError("a proof read every signed head")

    ledger.signed_heads = every_head
    assert (await inclusion_proof_document(ledger, "r-25", ORIGIN))["tree_size"] == 37  # the latest
    assert (await inclusion_proof_document(ledger, "r-25", ORIGIN, size=30))["tree_size"] == 30
    consistency = await consistency_proof_document(ledger, 20, 30, ORIGIN)
    assert check_proof(consistency, key.public_key(), ORIGIN) is None


async def test_what_cannot_be_proven_is_said_plainly():
    key = Ed25519PrivateKey.generate()
    ledger = signed_ledger(10, key, [5])
    for call, message in [
        (inclusion_proof_document(ledger, "nope", ORIGIN), "no record nope in the ledger"),
        (inclusion_proof_document(ledger, "r-7", ORIGIN), "no signed head covers this record yet"),
        (inclusion_proof_document(ledger, "r-1", ORIGIN, size=9), "no signed head of size 9"),
        (consistency_proof_document(ledger, 5, 8, ORIGIN), "no signed head of size 8"),
    ]:
        with pytest.raises(ProofUnavailable, match=message):
            await call
    ledger.heads.append({"_id": 12, "note": make_checkpoint(ORIGIN, 12, b"\1" * 32).sign(key)})  # more than is stored
    with pytest.raises(ProofUnavailable, match="leaf 10 is missing.*run `eucaim-node audit verify`"):
        await inclusion_proof_document(ledger, "r-7", ORIGIN)


async def test_verify_streams_the_records_through_the_reader_port():
    key = Ed25519PrivateKey.generate()
    ledger = signed_ledger(50, key, [16, 50])
    report = await verify_ledger(ledger, key.public_key(), ORIGIN)
    assert report.ok and report.records == 50 and report.heads_verified == 2
    ledger.records_list[7]["detail"]["i"] = -1
    report = await verify_ledger(ledger, key.public_key(), ORIGIN)
    assert not report.ok and report.first().kind == "edited" and report.first().leaf == 7
