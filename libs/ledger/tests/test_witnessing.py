"""WitnessSubmitter's handling of the witness's 409 answers (c2sp.org/tlog-witness, "add-checkpoint"), with a fake
witness client and an in-memory ledger state: the submitter must follow a witness that moved forward, and must
refuse to follow one that went back below what it already cosigned (lost or rolled-back state, or an impostor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.ledger.checkpoint import make_checkpoint
from eucaim_node.ledger.merkle import Node, leaf_hash, root, verify_consistency
from eucaim_node.ledger.ports import CountingReader
from eucaim_node.ledger.witness_client import WitnessConflict, WitnessError
from eucaim_node.ledger.witnessing import (
    CheckpointRejected,
    WitnessAhead,
    WitnessRolledBack,
    WitnessSubmitter,
    reanchor_refusal,
)

from .memory_ledger import MemoryLedger

ORIGIN = "node.example/audit"
KEY = Ed25519PrivateKey.generate()


def signed_note(size: int, tree_root: bytes, key: Ed25519PrivateKey = KEY) -> str:
    return make_checkpoint(ORIGIN, size, tree_root, datetime(2026, 1, 1, tzinfo=UTC)).sign(key)


def submitter(ledger, witness, nodes=None) -> WitnessSubmitter:
    return WitnessSubmitter(ledger, witness, None, public_key=KEY.public_key(), origin=ORIGIN, nodes=nodes)  # type: ignore[arg-type]


class FakeLedger(MemoryLedger):
    """The parts of LedgerStore the submitter uses, in memory (subtree hashes stored up to the latest head, a head
    signed with KEY at every size)."""

    def __init__(self, leaves: int, state: dict[str, Any] | None = None) -> None:
        super().__init__([leaf_hash(f"record {i}".encode()) for i in range(leaves)])
        self.state: dict[str, Any] = {"_id": "witness", "size": 0, **(state or {})}
        #: Planted faults: the note stored as the head of a size (None: no head of that size).
        self.planted: dict[int, str | None] = {}

    async def latest_head(self) -> dict[str, Any] | None:
        return await self.signed_head(len(self.hashes)) if self.hashes else None

    async def signed_head(self, size: int) -> dict[str, Any] | None:
        if not 0 < size <= len(self.hashes):
            return None
        note = self.planted.get(size, signed_note(size, root(self.hashes[:size])))
        return None if note is None else {"_id": size, "note": note}

    async def witness_state(self) -> dict[str, Any]:
        return dict(self.state)

    async def record_witnessed(self, size, cosigned_note, at) -> None:
        self.state.update(size=size, cosigned_size=size, cosigned_note=cosigned_note, last_error=None,
                          witness_reported_size=None, reanchor_to=None)

    async def record_witness_error(self, known_size, error, at, *, reported_size=None) -> None:
        self.state["last_error"] = error
        if known_size is not None:
            self.state["size"] = known_size
        if reported_size is not None:
            self.state["witness_reported_size"] = reported_size

    async def allow_witness_reanchor(self, size: int, at) -> None:
        self.state["reanchor_to"] = size


class FakeWitness:
    """Answers 409 with the given sizes (in turn), then cosigns; records every ``old`` it was sent."""

    def __init__(self, *conflicts: int | None) -> None:
        self.conflicts = list(conflicts)
        self.olds: list[int] = []
        self.proofs: list[list[bytes]] = []

    async def add_checkpoint(self, old_size: int, proof, note: str) -> str:
        self.olds.append(old_size)
        self.proofs.append(list(proof))
        if self.conflicts:
            raise WitnessConflict(self.conflicts.pop(0), "conflict")
        return "— witness.example cosig\n"


async def test_a_witness_reporting_a_size_below_the_cosigned_one_is_not_followed():
    ledger = FakeLedger(12, {"size": 8, "cosigned_size": 8})
    witness = FakeWitness(3)
    with pytest.raises(WitnessRolledBack):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == [8], "resubmitted from the smaller size: the node re-anchored silently"
    assert ledger.state["size"] == 8 and ledger.state["cosigned_size"] == 8
    assert "witness reports size 3 below the cosigned size 8" in ledger.state["last_error"]
    assert "refusing to re-anchor" in ledger.state["last_error"]
    assert ledger.state["witness_reported_size"] == 3


async def test_a_witness_that_moved_forward_is_followed():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    witness = FakeWitness(8)
    submitted = await submitter(ledger, witness).submit_latest()
    assert witness.olds == [4, 8]
    assert submitted is not None and submitted.witnessed_size == 12
    assert ledger.state["cosigned_size"] == 12 and ledger.state["last_error"] is None


async def test_each_submission_sends_a_valid_consistency_proof_from_a_few_stored_subtree_hashes():
    # A submission reads O(log n) stored subtree hashes, one round trip per proof, never every leaf.
    ledger = CountingReader(FakeLedger(12, {"size": 4, "cosigned_size": 4}))
    witness = FakeWitness(8)
    await submitter(ledger, witness).submit_latest()
    assert ledger.port_calls == 2 and ledger.hashes_read <= 2 * 4  # two proofs (4 -> 12, 8 -> 12), 2·log2(12) each
    for old, proof in zip(witness.olds, witness.proofs, strict=True):
        verify_consistency(old, 12, root(ledger.hashes[:old]), root(ledger.hashes), proof)


async def test_a_size_below_the_known_but_not_below_the_cosigned_one_is_followed():
    # The node learnt size 8 from an earlier 409 but only 4 was cosigned: 6 is not going back behind a cosignature.
    ledger = FakeLedger(12, {"size": 8, "cosigned_size": 4})
    witness = FakeWitness(6)
    await submitter(ledger, witness).submit_latest()
    assert witness.olds == [8, 6]
    assert ledger.state["cosigned_size"] == 12


async def test_a_fresh_node_follows_the_witness_size():
    ledger = FakeLedger(5)
    witness = FakeWitness(2)
    await submitter(ledger, witness).submit_latest()
    assert witness.olds == [0, 2]


async def test_a_409_with_the_size_already_sent_is_raised_and_recorded():
    ledger = FakeLedger(12, {"size": 8, "cosigned_size": 8})
    witness = FakeWitness(8)
    with pytest.raises(WitnessConflict):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == [8] and ledger.state["last_error"]


async def test_a_witness_ahead_of_the_ledger_gets_nothing_and_the_error_is_recorded():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    witness = FakeWitness(20)
    with pytest.raises(WitnessAhead):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == [4], "submitted a head to a witness that saw more leaves than the ledger holds"
    assert "leaves the witness saw are gone" in ledger.state["last_error"]
    assert ledger.state["cosigned_size"] == 4


async def test_an_operator_reanchor_to_the_reported_size_lets_the_next_submission_follow_it_once():
    ledger = FakeLedger(12, {"size": 8, "cosigned_size": 8})
    with pytest.raises(WitnessRolledBack):
        await submitter(ledger, FakeWitness(3)).submit_latest()
    await ledger.allow_witness_reanchor(3, None)
    witness = FakeWitness(3)
    await submitter(ledger, witness).submit_latest()
    assert witness.olds == [8, 3]
    assert ledger.state["cosigned_size"] == 12 and ledger.state["reanchor_to"] is None
    assert isinstance(WitnessRolledBack("x", reported=1, cosigned=2), WitnessError)


def test_an_operator_may_allow_only_the_exact_size_the_witness_reported_below_its_cosigned_size():
    state = {"_id": "witness", "size": 8, "cosigned_size": 8, "witness_reported_size": 3}
    assert reanchor_refusal(state, 3) is None
    assert "reported size 3, not 5" in reanchor_refusal(state, 5)
    assert "nothing to re-anchor" in reanchor_refusal({"size": 8, "cosigned_size": 8}, 3)
    assert "not below the cosigned size" in reanchor_refusal({**state, "witness_reported_size": 9}, 9)


class FakeNodes:
    """The index's repair operation (TreeNodeIndex.replace) over the fake ledger's stored subtree hashes."""

    def __init__(self, ledger: FakeLedger) -> None:
        self.ledger = ledger
        self.replaced: dict[Node, bytes] = {}

    async def replace(self, nodes: dict[Node, bytes]) -> None:
        self.replaced.update(nodes)
        self.ledger.stored.update(nodes)


async def test_a_checkpoint_not_signed_by_the_nodes_own_key_is_never_sent():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    ledger.planted[12] = signed_note(12, root(ledger.hashes), Ed25519PrivateKey.generate())
    witness = FakeWitness()
    with pytest.raises(CheckpointRejected, match="not signed by this node's key"):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == [], "a checkpoint the node did not sign was sent to the witness"
    assert "not signed by this node's key" in ledger.state["last_error"] and ledger.state["cosigned_size"] == 4


async def test_a_head_stored_under_another_size_than_it_is_signed_for_is_never_sent():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    ledger.planted[12] = signed_note(11, root(ledger.hashes[:11]))
    witness = FakeWitness()
    with pytest.raises(CheckpointRejected, match="checkpoint of size 11"):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == []


async def test_a_head_inconsistent_with_the_witnessed_one_is_never_sent():
    # The head of the witnessed size is signed over another tree (a fork): no proof can verify, even from the leaves.
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    ledger.planted[4] = signed_note(4, b"\x01" * 32)
    witness = FakeWitness()
    with pytest.raises(CheckpointRejected, match="does not verify against the signed heads even from the leaves"):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == []


async def test_a_witness_size_the_node_never_signed_is_not_proven_to():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    ledger.planted[4] = None
    witness = FakeWitness()
    with pytest.raises(CheckpointRejected, match="no signed head"):
        await submitter(ledger, witness).submit_latest()
    assert witness.olds == []


async def test_a_wrong_stored_subtree_hash_is_proven_around_from_the_leaves_and_replaced():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    good = ledger.stored[(2, 1)]
    ledger.stored[(2, 1)] = b"\x00" * 32  # the root of leaves 4..7: the first hash of PROOF(4, 12)
    nodes, witness = FakeNodes(ledger), FakeWitness()
    submitted = await submitter(ledger, witness, nodes).submit_latest()
    assert submitted is not None and submitted.stale_hashes == 1
    assert nodes.replaced == {(2, 1): good} and ledger.stored[(2, 1)] == good
    verify_consistency(4, 12, root(ledger.hashes[:4]), root(ledger.hashes), witness.proofs[0])
    # The next submission needs no repair: the stored hash is right again.
    ledger.hashes.append(leaf_hash(b"record 12"))
    assert (await submitter(ledger, FakeWitness(), nodes).submit_latest()).stale_hashes == 0  # type: ignore[union-attr]


async def test_a_reader_that_may_not_write_still_sends_a_proof_from_the_leaves():
    ledger = FakeLedger(12, {"size": 4, "cosigned_size": 4})
    ledger.stored[(2, 1)] = b"\x00" * 32
    witness = FakeWitness()
    submitted = await submitter(ledger, witness).submit_latest()
    assert submitted is not None and submitted.stale_hashes == 1 and ledger.stored[(2, 1)] == b"\x00" * 32
    verify_consistency(4, 12, root(ledger.hashes[:4]), root(ledger.hashes), witness.proofs[0])
