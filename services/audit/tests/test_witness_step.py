"""HeadSigner.witness_step: each kind of witness failure is counted under its own ``kind`` and logged, and the
signing goes on (nothing lost). The submitter and the ledger are fakes: the submitter's own logic is tested in
libs/ledger/tests/test_witnessing.py."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.audit.adapters.background import HeadSigner
from eucaim_node.ledger.witness_client import WitnessUnavailable
from eucaim_node.ledger.witnessing import CheckpointRejected, Submitted, WitnessAhead, WitnessRolledBack
from eucaim_node.telemetry import metrics


class Ledger:
    async def latest_head(self):
        return {"_id": 12}

    async def witness_state(self):
        return {"_id": "witness", "size": 8, "cosigned_size": 8}


class RaisingSubmitter:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def submit_latest(self):
        raise self.exc


def failures(kind: str) -> float:
    return metrics.REGISTRY.get_sample_value("eucaim_audit_witness_failures_total",
                                             {"service": "audit", "kind": kind}) or 0.0


async def step_with(exc: Exception) -> None:
    signer = HeadSigner(Ledger(), Ed25519PrivateKey.generate(), "node.example/audit", 1.0,  # type: ignore[arg-type]
                        RaisingSubmitter(exc))  # type: ignore[arg-type]
    await signer.witness_step()


async def test_a_rolled_back_witness_is_counted_as_its_own_kind_and_logged_at_error(caplog):
    before, refused = failures("rolled_back"), failures("refused")
    with caplog.at_level(logging.INFO, logger="eucaim_node.audit"):
        await step_with(WitnessRolledBack("witness reports size 3 below the cosigned size 8", reported=3, cosigned=8))
    assert failures("rolled_back") == before + 1 and failures("refused") == refused
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "NOT re-anchored" in errors[0].getMessage()
    assert metrics.REGISTRY.get_sample_value("eucaim_audit_witness_pending_leaves", {"service": "audit"}) == 4


async def test_a_witness_ahead_of_the_ledger_is_counted_as_refused_and_logged_at_error(caplog):
    before = failures("refused")
    with caplog.at_level(logging.INFO, logger="eucaim_node.audit"):
        await step_with(WitnessAhead("the witness cosigned a tree of 20 leaves, the ledger's latest head has 12"))
    assert failures("refused") == before + 1
    assert any(r.levelno == logging.ERROR for r in caplog.records)


async def test_an_unavailable_witness_is_a_warning():
    before = failures("unavailable")
    await step_with(WitnessUnavailable("down"))
    assert failures("unavailable") == before + 1


async def test_a_checkpoint_that_fails_the_nodes_own_check_is_counted_as_rejected_locally(caplog):
    before, refused = failures("rejected_locally"), failures("refused")
    with caplog.at_level(logging.INFO, logger="eucaim_node.audit"):
        await step_with(CheckpointRejected("not submitted: the checkpoint of size 12 is not signed by this node's key"))
    assert failures("rejected_locally") == before + 1 and failures("refused") == refused
    assert any(r.levelno == logging.ERROR and "NOT submitted" in r.getMessage() for r in caplog.records)


class RepairingSubmitter:
    async def submit_latest(self):
        return Submitted(12, 12, stale_hashes=2)


async def test_stored_hashes_repaired_while_proving_to_the_witness_are_counted():
    def sample(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, {"service": "audit", **labels}) or 0.0

    mismatches, repaired = sample("eucaim_audit_tree_node_mismatches_total", kind="proof"), \
        sample("eucaim_audit_tree_nodes_repaired_total")
    signer = HeadSigner(Ledger(), Ed25519PrivateKey.generate(), "node.example/audit", 1.0,  # type: ignore[arg-type]
                        RepairingSubmitter())  # type: ignore[arg-type]
    await signer.witness_step()
    assert sample("eucaim_audit_tree_node_mismatches_total", kind="proof") == mismatches + 1
    assert sample("eucaim_audit_tree_nodes_repaired_total") == repaired + 2
