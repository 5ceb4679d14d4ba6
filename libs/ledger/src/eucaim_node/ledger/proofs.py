"""Inclusion and consistency proofs (RFC 9162 2.1.3, 2.1.4) built from the stored ledger in O(log n) reads.

A proof is the list of roots of a few subtrees (``merkle.inclusion_ranges`` / ``consistency_ranges``); each
splits into at most log2 n perfect subtrees (``merkle.perfect_nodes``), and the subtrees of one proof together
number at most about 2·log2 n. Their hashes are read in one call of the reader port, by key, from the leaf and
subtree hashes the audit service stores (``store.TreeNodeIndex``). A subtree the index does not hold yet (leaves appended since the service last indexed, or a ledger from before the index)
is computed from its leaves, so proofs are always possible and cost O(log n) once the index covers the head.

The proof documents are what ``eucaim-node audit prove|consistency`` print and ``check-proof`` checks offline.

Stored hashes are derived data and may be wrong (a bad write, an edit): :func:`checked_path` checks a path built
from them against the signed head and, when it fails, builds it again from the leaves and names the stored hashes
that disagree (``stale``), so one bad stored hash never makes every proof touching it fail forever. Who replaces
them depends on who may write ``audit_tree_nodes`` (decision 0115: the audit service; the CLI only reads).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .canonical import canonical_bytes
from .checkpoint import HeadError, open_note
from .merkle import (
    Node,
    ProofError,
    Range,
    consistency_ranges,
    fold,
    inclusion_ranges,
    leaf_hash,
    perfect_nodes,
    root,
    verify_consistency,
    verify_inclusion,
)
from .ports import LedgerInconsistent, LedgerReader


class ProofUnavailable(LookupError):
    """No proof can be made (no such record, no such head, a head that does not cover the record)."""


async def subtree_roots(reader: LedgerReader, ranges: Sequence[Range]) -> list[bytes]:
    """The root of each subtree in ``ranges``, from stored hashes (one read), computing what is not stored."""
    split = [perfect_nodes(start, end) for start, end in ranges]
    wanted = {node for nodes in split for node in nodes}
    found = await reader.nodes(wanted) if wanted else {}
    found.update(await _from_leaves(reader, wanted - found.keys()))
    return [fold([found[node] for node in nodes]) for nodes in split]


async def _from_leaves(reader: LedgerReader, nodes: set[Node]) -> dict[Node, bytes]:
    return {(level, index): root(await reader.leaf_hashes(index << level, (index + 1) << level))
            for level, index in sorted(nodes)}


@dataclass(frozen=True)
class CheckedPath:
    """A proof path and the stored subtree hashes found to disagree with the leaves while building it (node →
    the hash recomputed from the leaves; empty when the stored hashes gave a path that verifies)."""

    path: list[bytes]
    stale: dict[Node, bytes] = field(default_factory=dict)


async def checked_path(reader: LedgerReader, ranges: Sequence[Range],
                       problem: Callable[[list[bytes]], str | None]) -> CheckedPath:
    """The path of ``ranges`` from stored hashes if ``problem`` (the check against the signed head) finds nothing
    wrong with it; otherwise the path recomputed from the leaves (O(subtree sizes) reads), with the stored hashes
    that disagree. A path from the leaves that does not verify either is returned as it is: the leaves are wrong
    (``verify`` says where), not the stored hashes, and the caller's check reports it."""
    path = await subtree_roots(reader, ranges)
    if problem(path) is None:
        return CheckedPath(path)
    wanted = {node for start, end in ranges for node in perfect_nodes(start, end)}
    fresh = await _from_leaves(reader, wanted)
    path = [fold([fresh[node] for node in perfect_nodes(start, end)]) for start, end in ranges]
    if problem(path) is not None:  # the leaves are wrong: the stored hashes may well be right, blame none of them
        return CheckedPath(path)
    stored = await reader.nodes(wanted)
    return CheckedPath(path, {node: digest for node, digest in fresh.items() if node in stored and stored[node] != digest})


async def inclusion_path(reader: LedgerReader, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of the stored tree."""
    return await subtree_roots(reader, inclusion_ranges(index, size))


async def consistency_path(reader: LedgerReader, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) of the stored tree."""
    return await subtree_roots(reader, consistency_ranges(first, second))


async def pick_head(reader: LedgerReader, size: int | None, above: int) -> dict[str, Any]:
    """The signed head of ``size``, or (None) the latest head, which must cover leaf ``above``: one read by key,
    never the list of every head (one per signing interval, hundreds of thousands a year)."""
    if size is not None:
        head = await reader.signed_head(size)
        if head is None:
            raise ProofUnavailable(f"no signed head of size {size}")
        return head
    head = await reader.latest_head()
    if head is None or head["_id"] <= above:
        raise ProofUnavailable("no signed head covers this record yet (sign one with `eucaim-node audit head --sign`)")
    return head


def _inconsistent(exc: LedgerInconsistent) -> ProofUnavailable:
    return ProofUnavailable(f"{exc}: run `eucaim-node audit verify`")


@dataclass(frozen=True)
class Proof:
    """A proof document and the stored subtree hashes that disagreed with the leaves (see :func:`checked_path`)."""

    document: dict[str, Any]
    stale: dict[Node, bytes] = field(default_factory=dict)


async def inclusion_proof_document(reader: LedgerReader, record_id: str, origin: str,
                                   size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of a record in a signed head (the latest covering it, or the one of ``size``), from the
    stored hashes as they are (``check_proof`` finds a wrong one; :func:`inclusion_proof` recovers from it)."""
    return (await inclusion_proof(reader, record_id, origin, None, size)).document


async def inclusion_proof(reader: LedgerReader, record_id: str, origin: str, public_key: Ed25519PublicKey | None,
                          size: int | None = None) -> Proof:
    """:func:`inclusion_proof_document`, checked against the signed head with ``public_key`` (None: not checked) and
    rebuilt from the leaves if a stored hash is wrong."""
    record = await reader.record(record_id)
    if record is None or not isinstance(record.get("leaf_index"), int):
        raise ProofUnavailable(f"no record {record_id} in the ledger")
    index = record["leaf_index"]
    head = await pick_head(reader, size, index)
    if head["_id"] <= index:
        raise ProofUnavailable(f"the head of size {head['_id']} does not cover leaf {index}")

    def document(path: list[bytes]) -> dict[str, Any]:
        return {
            "type": "inclusion", "origin": origin, "record_id": record_id, "leaf_index": index,
            "tree_size": head["_id"], "record": base64.b64encode(canonical_bytes(record)).decode(),
            "leaf_hash": record["leaf_hash"], "audit_path": [p.hex() for p in path], "checkpoint": head["note"],
        }

    return await _checked_document(reader, inclusion_ranges(index, head["_id"]), document, public_key, origin)


async def consistency_proof_document(reader: LedgerReader, first: int, second: int, origin: str) -> dict[str, Any]:
    """The consistency proof between the signed heads of sizes ``first`` and ``second``, from the stored hashes."""
    return (await consistency_proof(reader, first, second, origin, None)).document


async def consistency_proof(reader: LedgerReader, first: int, second: int, origin: str,
                            public_key: Ed25519PublicKey | None) -> Proof:
    """:func:`consistency_proof_document`, checked and rebuilt from the leaves like :func:`inclusion_proof`."""
    older, newer = await pick_head(reader, first, 0), await pick_head(reader, second, 0)
    try:
        ranges = consistency_ranges(first, second)
    except ValueError as exc:  # first > second
        raise ProofUnavailable(str(exc)) from None

    def document(path: list[bytes]) -> dict[str, Any]:
        return {"type": "consistency", "origin": origin, "first": older["note"], "second": newer["note"],
                "path": [p.hex() for p in path]}

    return await _checked_document(reader, ranges, document, public_key, origin)


async def _checked_document(reader: LedgerReader, ranges: Sequence[Range],
                            document: Callable[[list[bytes]], dict[str, Any]],
                            public_key: Ed25519PublicKey | None, origin: str) -> Proof:
    def problem(path: list[bytes]) -> str | None:
        return None if public_key is None else check_proof(document(path), public_key, origin)

    try:
        checked = await checked_path(reader, ranges, problem)
    except LedgerInconsistent as exc:
        raise _inconsistent(exc) from None
    return Proof(document(checked.path), checked.stale)


def check_proof(proof: dict[str, Any], public_key: Ed25519PublicKey, origin: str) -> str | None:
    """None if ``proof`` (an inclusion or consistency proof document) verifies, else what is wrong."""
    try:
        if proof.get("type") == "inclusion":
            head = open_note(proof["checkpoint"], public_key, origin=origin)
            leaf = leaf_hash(base64.b64decode(proof["record"]))
            if leaf.hex() != proof["leaf_hash"]:
                return "the record does not hash to the leaf hash"
            if head.size != proof["tree_size"]:
                return "the checkpoint is for another tree size"
            verify_inclusion(int(proof["leaf_index"]), head.size, leaf, [bytes.fromhex(p) for p in proof["audit_path"]],
                             head.root)
            if json.loads(base64.b64decode(proof["record"])).get("leaf_index") != proof["leaf_index"]:
                return "the record names another leaf"
            return None
        if proof.get("type") == "consistency":
            a = open_note(proof["first"], public_key, origin=origin)
            b = open_note(proof["second"], public_key, origin=origin)
            verify_consistency(a.size, b.size, a.root, b.root, [bytes.fromhex(p) for p in proof["path"]])
            return None
        return "unknown proof type"
    except (HeadError, ProofError) as exc:
        return str(exc)
    except (KeyError, ValueError, TypeError) as exc:
        return f"malformed proof ({type(exc).__name__}: {exc})"

