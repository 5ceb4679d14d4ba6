"""Getting the ledger's signed heads cosigned by the witness, and keeping what is pending.

The latest signed head is submitted with a consistency proof from the size the witness last
cosigned (c2sp.org/tlog-witness). A head cosigned there vouches for every earlier leaf, so when the
witness was away the backlog is one submission of the newest head. On 409 the witness says its
size and the submission is retried from it; a witness ahead of the ledger (409 with a larger size)
means the ledger lost leaves the witness saw: nothing is submitted and the error is recorded. A 409 with a size
*below* the one this witness already cosigned for the node means the witness lost or rolled back its state (or is
not the witness it was): following it would re-anchor the log there, and a ledger rewritten meanwhile would get
cosigned. The submitter refuses (:class:`WitnessRolledBack`) until an operator allows that one size
(``eucaim-node audit witness-reanchor``, recorded in the state and the audit log).

Nothing leaves the node unchecked (:class:`CheckpointRejected`): the checkpoint must open with the node's own
public key, for this log and the head's size, and the consistency proof from the witnessed size must verify
against the two signed heads. A proof that fails because a stored subtree hash is wrong is rebuilt from the leaves
(``proofs.checked_path``) and the wrong hashes are replaced when the submitter may write them (the audit service).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .checkpoint import HeadError, open_note
from .merkle import ProofError, consistency_ranges, verify_consistency
from .ports import LedgerInconsistent
from .proofs import checked_path
from .store import LedgerStore, TreeNodeIndex, node_id
from .witness_client import Witness, WitnessClient, WitnessConflict, WitnessError, cosigned

log = logging.getLogger("eucaim_node.ledger.witness")

#: 409 answers followed in one submission (the witness moved twice meanwhile: another writer).
MAX_CONFLICTS = 3


class WitnessAhead(WitnessError):
    """The witness cosigned a larger tree than this ledger holds: leaves were lost (truncation) or forked."""


class WitnessRolledBack(WitnessError):
    """The witness reports a size below the one it already cosigned for this log: it lost or rolled back its state."""

    def __init__(self, message: str, *, reported: int, cosigned: int) -> None:
        super().__init__(message)
        self.reported, self.cosigned = reported, cosigned


class CheckpointRejected(WitnessError):
    """Not submitted: the node's own check of the checkpoint or of its consistency proof failed."""


@dataclass(frozen=True)
class Submitted:
    head_size: int
    witnessed_size: int
    #: Stored subtree hashes found wrong while proving consistency (replaced when the submitter has the index).
    stale_hashes: int = 0


class WitnessSubmitter:
    def __init__(self, store: LedgerStore, client: WitnessClient, witness: Witness | None, *,
                 public_key: Ed25519PublicKey, origin: str, nodes: TreeNodeIndex | None = None) -> None:
        """``public_key``, ``origin``: what every checkpoint must be signed with and for before it is sent.
        ``nodes``: the subtree-hash index to repair (None: a reader that may not write them, e.g. the CLI)."""
        self.store, self.client, self.witness = store, client, witness
        self.public_key, self.origin, self.nodes = public_key, origin, nodes
        self._stale_hashes = 0

    async def submit_latest(self) -> Submitted | None:
        """Submit the latest signed head unless the witness already cosigned it; None if there is no head.

        Raises WitnessError (recorded in the ledger state first) when it could not be cosigned."""
        head = await self.store.latest_head()
        if head is None:
            return None
        size = int(head["_id"])
        state = await self.store.witness_state()
        old = int(state.get("size", 0))
        if old == size and state.get("cosigned_size") == size:
            return Submitted(size, size)
        self._stale_hashes = 0
        try:
            cosigned_note = await self._submit(head["note"], size, old, _floor(state))
        except WitnessError as exc:
            known = exc.size if isinstance(exc, WitnessConflict) else None
            reported = exc.reported if isinstance(exc, WitnessRolledBack) else None
            await self.store.record_witness_error(known, str(exc), datetime.now(UTC), reported_size=reported)
            raise
        await self.store.record_witnessed(size, cosigned_note, datetime.now(UTC))
        log.info("tree head cosigned by the witness", extra={"tree_size": size})
        return Submitted(size, size, self._stale_hashes)

    async def _submit(self, note: str, size: int, old: int, floor: tuple[int, int | None]) -> str:
        cosigned_size, reanchor_to = floor
        new_root = self._signed_root(note, size)
        for _ in range(MAX_CONFLICTS + 1):
            if old > size:
                raise WitnessAhead(f"the witness cosigned a tree of {old} leaves, the ledger's latest head has "
                                   f"{size}: leaves the witness saw are gone (truncated or forked ledger)")
            proof: list[bytes] = []
            if 0 < old < size:  # O(log n) stored subtree hashes (proofs.py), so a 409 retry costs little
                proof = await self._consistency_proof(old, size, new_root)
            try:
                lines = await self.client.add_checkpoint(old, proof, note)
            except WitnessConflict as conflict:
                if conflict.size is None or conflict.size == old:
                    raise
                if conflict.size < cosigned_size and conflict.size != reanchor_to:
                    raise WitnessRolledBack(
                        f"witness reports size {conflict.size} below the cosigned size {cosigned_size}: it lost or "
                        "rolled back its state; refusing to re-anchor (run `eucaim-node audit verify`, then "
                        f"`eucaim-node audit witness-reanchor --to-size {conflict.size}`)",
                        reported=conflict.size, cosigned=cosigned_size) from None
                log.info("the witness holds another size, resubmitting", extra={"witness_size": conflict.size})
                old = conflict.size
                continue
            return cosigned(note, lines, self.witness)
        raise WitnessError(f"the witness's size kept changing over {MAX_CONFLICTS} submissions")

    def _signed_root(self, note: str, size: int) -> bytes:
        """The root ``note`` is signed over, if it is this log's checkpoint of ``size`` signed with the node's key."""
        try:
            checkpoint = open_note(note, self.public_key, origin=self.origin)
        except HeadError as exc:
            raise CheckpointRejected(f"not submitted: the checkpoint of size {size} is not signed by this node's key "
                                     f"for {self.origin}: {exc}") from None
        if checkpoint.size != size:
            raise CheckpointRejected(f"not submitted: the head stored as size {size} is a checkpoint of size "
                                     f"{checkpoint.size}")
        return checkpoint.root

    async def _consistency_proof(self, old: int, size: int, new_root: bytes) -> list[bytes]:
        """PROOF(old, size), verified against the node's own signed heads of both sizes before it is sent; rebuilt
        from the leaves (and the stored hashes repaired) if a stored subtree hash is wrong."""
        old_head = await self.store.signed_head(old)
        if old_head is None:
            raise CheckpointRejected(f"not submitted: the witness holds size {old}, for which this node has no signed "
                                     "head, so consistency with it cannot be checked")
        old_root = self._signed_root(old_head["note"], old)

        def problem(path: list[bytes]) -> str | None:
            try:
                verify_consistency(old, size, old_root, new_root, path)
            except ProofError as exc:
                return str(exc)
            return None

        try:
            checked = await checked_path(self.store, consistency_ranges(old, size), problem)
        except LedgerInconsistent as exc:
            raise WitnessError(f"no consistency proof from {old} to {size}: {exc}") from None
        failure = problem(checked.path)
        if failure is not None:
            raise CheckpointRejected(f"not submitted: the consistency proof from {old} to {size} does not verify "
                                     f"against the signed heads even from the leaves ({failure}): run "
                                     "`eucaim-node audit verify`")
        if checked.stale:
            log.error("stored subtree hashes disagree with the leaves: the consistency proof was rebuilt from the "
                      "leaves", extra={"first": old, "tree_size": size,
                                       "nodes": sorted(node_id(*n) for n in checked.stale)})
            if self.nodes is not None:
                await self.nodes.replace(checked.stale)
            self._stale_hashes += len(checked.stale)
        return checked.path


def _floor(state: dict) -> tuple[int, int | None]:
    """The size this witness already cosigned (it may never report less) and the one re-anchor size an operator
    allowed below it (None: none)."""
    allowed = state.get("reanchor_to")
    return int(state.get("cosigned_size") or 0), None if allowed is None else int(allowed)


def reanchor_refusal(state: dict, to_size: int) -> str | None:
    """Why an operator may not allow re-anchoring at ``to_size`` (None: allowed): only the exact size a witness
    that went back reported, and only below the cosigned size (anything else needs no operator act)."""
    reported = state.get("witness_reported_size")
    cosigned_size, _ = _floor(state)
    if reported is None:
        return "the witness has reported no size below its cosigned size: nothing to re-anchor"
    if to_size != int(reported):
        return f"the witness reported size {reported}, not {to_size}"
    if to_size >= cosigned_size:
        return f"size {to_size} is not below the cosigned size {cosigned_size}: nothing to re-anchor"
    return None


async def witnessed_head(url: str, vkey_file: Path, ca_file: Path | None, origin: str,
                         log_key: Ed25519PublicKey) -> dict[str, str]:
    """The witness's latest cosigned checkpoint of this log, checked against the two trust anchors read from files
    (the witness's verifier key, the log's public key), as a head for ``verify_ledger``; raises WitnessError or
    HeadError saying what is wrong."""
    witness = Witness.from_file(vkey_file)
    client = WitnessClient(url, ca_file=ca_file)
    try:
        note = await client.latest(origin)
    finally:
        await client.close()
    if note is None:
        raise WitnessError(f"the witness holds no checkpoint of {origin} (nothing witnessed yet, "
                           "or the witness lost its state)")
    open_note(note, log_key, origin=origin)  # a checkpoint of this log, signed by its key
    witness.check(note)
    return {"note": note, "source": f"witnessed (by {witness.name})"}
