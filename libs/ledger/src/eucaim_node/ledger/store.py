"""The ledger in MongoDB: records with their Merkle leaf, signed tree heads, the forwarding cursor.

Leaf index assignment (no transactions, no atomic counters: FerretDB 1.24, decision 0002)
-----------------------------------------------------------------------------------------
A record and its leaf are *one* document, inserted once: ``{_id: record id, leaf_index: n,
leaf_hash: …, …}`` with a unique index on ``leaf_index``. The writer keeps the next index in
memory (read once as max(leaf_index) + 1). The insert is the only write, so:

* a redelivered event collides on ``_id`` → it already has its record and its leaf: nothing new;
* a second writer that took index ``n`` first makes our insert collide on ``leaf_index`` → we
  re-read the size and retry with the next free index. Indices stay gap-free and unique because a
  writer only ever tries ``max + 1`` of what it has seen committed, and the unique index, not a
  counter, decides who gets it (inserts with a unique key are atomic on MongoDB and FerretDB;
  ``$inc`` is not on FerretDB).

One writer per tree is the normal case (one audit consumer); a second one is safe, just slower
(collisions). ``leaf_hash`` is stored for speed and for pinpointing edits; verification always
recomputes it from the record.

Subtree hashes (decision 0115)
------------------------------
:class:`TreeNodeIndex` stores the hash of every perfect subtree of level >= 1 under the latest signed
head (``audit_tree_nodes``, ``_id`` = "level/index", inserted once), so an inclusion or consistency
proof reads O(log n) hashes instead of every leaf (``proofs.py``). They are derived data: they are stored only
once the root they give matches the signed head, a proof built from them is checked against the signed head
(and rebuilt from the leaves if a stored hash is wrong), and ``verify`` never reads them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from eucaim_node.store import collections

from .canonical import record_leaf_hash
from .checkpoint import HeadError, make_checkpoint, open_note
from .merkle import CompactTree, Node
from .ports import LedgerInconsistent

log = logging.getLogger("eucaim_node.ledger")

AUDIT_TREE_HEADS = collections.AUDIT_TREE_HEADS
AUDIT_LEDGER_STATE = collections.AUDIT_LEDGER_STATE
AUDIT_TREE_NODES = collections.AUDIT_TREE_NODES
MAX_APPEND_ATTEMPTS = 50
#: The document in AUDIT_LEDGER_STATE recording what the witness last cosigned (and the last failure).
WITNESS_STATE = "witness"
#: The document in AUDIT_LEDGER_STATE saying how many leaves the subtree hashes cover, and the tree's right edge there.
NODE_INDEX_STATE = "tree-nodes"
#: Records read per batch when streaming the ledger (verify, export): bounded memory at any size.
STREAM_BATCH = 2000
_DUPLICATE_KEY = 11000

__all__ = ["AUDIT_LEDGER_STATE", "AUDIT_TREE_HEADS", "AUDIT_TREE_NODES", "Appended", "LedgerInconsistent",
           "LedgerStore", "MongoLedgerReader", "TreeNodeIndex", "TreeNodesMismatch", "WITNESS_STATE"]


@dataclass(frozen=True)
class Appended:
    new: bool
    leaf_index: int


def node_id(level: int, index: int) -> str:
    return f"{level}/{index}"


class MongoLedgerReader:
    """The ledger's reader port (``ports.LedgerReader``) over MongoDB: what ``eucaim-node audit`` reads."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._records = db[collections.AUDIT_RECORDS]
        self._heads = db[AUDIT_TREE_HEADS]
        self._nodes = db[AUDIT_TREE_NODES]

    async def signed_heads(self) -> list[dict[str, Any]]:
        return [h async for h in self._heads.find({}, sort=[("_id", ASCENDING)])]

    async def record(self, record_id: str) -> dict[str, Any] | None:
        return await self._records.find_one({"_id": record_id})

    async def records_by_leaf(self) -> AsyncIterator[dict[str, Any]]:
        cursor = self._records.find({"leaf_index": {"$exists": True}}, sort=[("leaf_index", ASCENDING)],
                                   batch_size=STREAM_BATCH)
        async for record in cursor:
            yield record

    async def records_outside_tree(self) -> list[str]:
        return [str(d["_id"]) async for d in self._records.find({"leaf_index": {"$exists": False}}, projection={"_id": 1})]

    async def records_recorded(self, since: datetime, until: datetime | None) -> AsyncIterator[dict[str, Any]]:
        window: dict[str, Any] = {"$gte": since}
        if until is not None:
            window["$lt"] = until
        cursor = self._records.find({"recorded_at": window, "leaf_index": {"$exists": True}},
                                   sort=[("leaf_index", ASCENDING)], batch_size=STREAM_BATCH)
        async for record in cursor:
            yield record

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        # One lookup by _id per hash, concurrently: served by the _id index on MongoDB and on FerretDB, which
        # answers an $in, or any query on another field, by scanning the collection.
        order = list(wanted)
        docs = await asyncio.gather(*(self._nodes.find_one({"_id": node_id(*node)}) for node in order))
        return {node: bytes.fromhex(doc["hash"]) for node, doc in zip(order, docs, strict=True) if doc is not None}

    async def latest_head(self) -> dict[str, Any] | None:
        return await self._heads.find_one({}, sort=[("_id", DESCENDING)])

    async def signed_head(self, size: int) -> dict[str, Any] | None:
        return await self._heads.find_one({"_id": size})

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        hashes: list[bytes] = []
        cursor = self._records.find({"leaf_index": {"$gte": start, "$lt": end}}, sort=[("leaf_index", ASCENDING)],
                                   projection={"leaf_index": 1, "leaf_hash": 1}, batch_size=5000)
        async for doc in cursor:
            if doc["leaf_index"] != start + len(hashes):
                break
            hashes.append(bytes.fromhex(doc["leaf_hash"]))
        if len(hashes) != end - start:
            raise LedgerInconsistent(f"leaf {start + len(hashes)} is missing: the ledger has fewer leaves than {end}")
        return hashes


class TreeNodesMismatch(LedgerInconsistent):
    """The subtree hashes computed for a signed head do not give the root in its signed note: nothing was stored.
    Carries sizes and hashes only (never record content), for the log and the metric."""

    def __init__(self, size: int, covered: int, computed_root: str, signed_root: str) -> None:
        super().__init__(f"the subtree hashes for the signed head of size {size} (from the index at {covered} "
                         f"leaves) give root {computed_root}, the head is signed over {signed_root}")
        self.size, self.covered = size, covered
        self.computed_root, self.signed_root = computed_root, signed_root


class TreeNodeIndex:
    """Keeps ``audit_tree_nodes`` up to the latest signed head: the hash of every perfect subtree of level >= 1.

    Incremental and restart-safe: it resumes from the size and right edge in its state document (``tree-nodes``),
    reads only the new leaves' stored hashes, computes the subtrees they complete, checks that the right edge then
    gives the root the head is *signed* over (its note, opened with the node's public key), and only then inserts
    them (a repeat after a crash collides on ``_id`` and is skipped: same subtree, same hash) and advances its state.
    A mismatch stores nothing (:class:`TreeNodesMismatch`); :meth:`rebuild` then recomputes the index from the
    leaves and :meth:`replace` repairs stored hashes found wrong (decision 0115)."""

    def __init__(self, db: AsyncDatabase, public_key: Ed25519PublicKey, origin: str, *, batch: int = 5000) -> None:
        self.reader = MongoLedgerReader(db)
        self.nodes = db[AUDIT_TREE_NODES]
        self.state = db[AUDIT_LEDGER_STATE]
        self.public_key, self.origin = public_key, origin
        self.batch = batch

    async def covered(self) -> CompactTree:
        state = await self.state.find_one({"_id": NODE_INDEX_STATE})
        if state is None:
            return CompactTree()
        return CompactTree(int(state["size"]), [bytes.fromhex(p) for p in state["peaks"]])

    def signed_root(self, head: dict[str, Any]) -> bytes:
        """The root the head's note is signed over (not its unsigned ``root`` field); LedgerInconsistent if the note
        is not this log's, signed by its key, for the head's size."""
        try:
            signed = open_note(head["note"], self.public_key, origin=self.origin)
        except HeadError as exc:
            raise LedgerInconsistent(f"the head of size {head['_id']} is not signed by this node: {exc}") from None
        if signed.size != int(head["_id"]):
            raise LedgerInconsistent(f"the head stored as size {head['_id']} is signed for size {signed.size}")
        return signed.root

    async def extend(self, signed: tuple[int, list[bytes]] | None = None) -> int:
        """Index the leaves up to the latest signed head; the number of leaves now covered. ``signed``: the leaf
        hashes the signer just rehashed (first leaf, hashes; ``LedgerStore.signed_leaves``), used instead of
        reading them again: on FerretDB any query on ``leaf_index`` scans the whole collection."""
        head = await self.reader.latest_head()
        tree = await self.covered()
        if head is None or int(head["_id"]) <= tree.size:
            return tree.size
        size, covered = int(head["_id"]), tree.size
        if signed is not None and signed[0] <= tree.size and signed[0] + len(signed[1]) >= size:
            leaves = signed[1][tree.size - signed[0]:size - signed[0]]
        else:  # a backfill (a ledger from before the index, or the service restarted): one read of the new leaves
            leaves = await self.reader.leaf_hashes(tree.size, size)
        completed: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            completed.append((0, tree.size, leaf))
            tree.append(leaf, completed)
        # Checked before anything is written: a wrong right edge (state) or leaf hash must not leave stored hashes
        # behind that every later proof through them would trip over.
        signed_root = self.signed_root(head)
        if tree.root() != signed_root:
            raise TreeNodesMismatch(size, covered, tree.root().hex(), signed_root.hex())
        for start in range(0, len(completed), self.batch):
            await self._insert(completed[start:start + self.batch])
        await self._save(tree)
        return tree.size

    async def rebuild(self) -> int:
        """Recompute the whole index from the stored leaf hashes up to the latest signed head, check it against the
        signed root, and replace every stored hash that differs and the state; the number of hashes replaced.
        O(n): for after a mismatch only. Raises TreeNodesMismatch (storing nothing) if the leaves do not give the
        signed root either: then the records or their leaf hashes changed, which ``audit verify`` pinpoints."""
        head = await self.reader.latest_head()
        if head is None:
            return 0
        size, tree, completed = int(head["_id"]), CompactTree(), []
        for leaf in await self.reader.leaf_hashes(0, size):
            completed.append((0, tree.size, leaf))
            tree.append(leaf, completed)
        signed_root = self.signed_root(head)
        if tree.root() != signed_root:
            raise TreeNodesMismatch(size, 0, tree.root().hex(), signed_root.hex())
        stored = {doc["_id"]: doc["hash"] async for doc in self.nodes.find({}, batch_size=STREAM_BATCH)}
        wrong = {(level, index): digest for level, index, digest in completed
                 if stored.get(node_id(level, index)) != digest.hex()}
        await self.replace(wrong)
        await self._save(tree)
        return len(wrong)

    async def replace(self, nodes: dict[Node, bytes]) -> None:
        """Store these hashes (recomputed from the leaves and checked by the caller) in place of the stored ones."""
        if nodes:
            await self.nodes.bulk_write([ReplaceOne({"_id": node_id(*node)}, {"hash": digest.hex()}, upsert=True)
                                         for node, digest in nodes.items()], ordered=False)

    async def _save(self, tree: CompactTree) -> None:
        await self.state.update_one({"_id": NODE_INDEX_STATE}, {"$set": {
            "size": tree.size, "peaks": [p.hex() for p in tree.peaks]}}, upsert=True)

    async def _insert(self, completed: list[tuple[int, int, bytes]]) -> None:
        if not completed:
            return
        try:
            await self.nodes.insert_many([{"_id": node_id(level, index), "hash": digest.hex()}
                                          for level, index, digest in completed], ordered=False)
        except BulkWriteError as exc:  # already stored by an earlier, interrupted pass: the same hashes
            if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise


class LedgerStore(MongoLedgerReader):
    """The ledger's writer (the audit service): appends records, signs heads, keeps the witness and cursor state."""

    def __init__(self, db: AsyncDatabase) -> None:
        super().__init__(db)
        self.records, self.heads = self._records, self._heads
        self.state = db[AUDIT_LEDGER_STATE]
        self._next: int | None = None
        #: The leaf hashes the last ``sign_head`` rehashed from their records: (first leaf, hashes), for TreeNodeIndex.
        self.signed_leaves: tuple[int, list[bytes]] | None = None

    async def ensure_indexes(self) -> None:
        # sparse: records written before the ledger existed have no leaf (verify lists them).
        await self.records.create_index([("leaf_index", ASCENDING)], unique=True, sparse=True, name="leaf_index_unique")
        await self.records.create_index([("recorded_at", ASCENDING)], name="recorded_at")

    async def size(self) -> int:
        """Number of leaves (max leaf_index + 1)."""
        last = await self.records.find_one({"leaf_index": {"$exists": True}}, sort=[("leaf_index", DESCENDING)],
                                           projection={"leaf_index": 1})
        return 0 if last is None else int(last["leaf_index"]) + 1

    async def append(self, record: dict[str, Any]) -> Appended:
        """Insert ``record`` as the next leaf, unless a record with its ``_id`` exists (then nothing is written)."""
        for _ in range(MAX_APPEND_ATTEMPTS):
            index = self._next if self._next is not None else await self.size()
            document = {**record, "leaf_index": index}
            document["leaf_hash"] = record_leaf_hash(document).hex()
            try:
                await self.records.insert_one(document)
            except DuplicateKeyError:
                existing = await self.records.find_one({"_id": record["_id"]}, projection={"leaf_index": 1})
                if existing is not None:
                    return Appended(False, int(existing.get("leaf_index", -1)))
                log.info("leaf index taken by another writer, retrying", extra={"leaf_index": index})
                self._next = None
                continue
            self._next = index + 1
            return Appended(True, index)
        raise RuntimeError(f"could not get a leaf index in {MAX_APPEND_ATTEMPTS} attempts (many concurrent writers?)")

    async def append_batch(self, records: list[dict[str, Any]]) -> int:
        """Append ``records`` as consecutive leaves in one ordered insert (a bulk import; the benchmark). At the
        first collision (a record already there, another writer) the rest go through :meth:`append` one by one,
        so the result is what appending them in turn gives. Returns how many new leaves were written."""
        if not records:
            return 0
        index = self._next if self._next is not None else await self.size()
        documents = []
        for offset, record in enumerate(records):
            document = {**record, "leaf_index": index + offset}
            document["leaf_hash"] = record_leaf_hash(document).hex()
            documents.append(document)
        try:
            await self.records.insert_many(documents, ordered=True)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0))
            self._next = None
            rest = [await self.append(record) for record in records[inserted:]]
            return inserted + sum(r.new for r in rest)
        self._next = index + len(records)
        return len(records)

    async def records_from(self, start: int, limit: int = 0) -> AsyncIterator[dict[str, Any]]:
        cursor = self.records.find({"leaf_index": {"$gte": start}}, sort=[("leaf_index", ASCENDING)], limit=limit,
                                   batch_size=1000)
        async for document in cursor:
            yield document

    async def heads_between(self, first: int, last: int, *, limit: int = 0) -> list[dict[str, Any]]:
        """Signed heads of sizes first..last, smallest first."""
        query: dict[str, Any] = {"_id": {"$gte": first, "$lte": last}}
        return [h async for h in self.heads.find(query, sort=[("_id", ASCENDING)], limit=limit)]

    async def sign_head(self, key: Ed25519PrivateKey, origin: str, now: datetime, *, force: bool = False) -> dict[str, Any] | None:
        """Sign a tree head over every leaf appended so far; None if nothing was appended since the last head
        (unless ``force``). Leaves are rehashed from their records, so an edit made since the record was
        appended is refused, not signed."""
        last = await self.latest_head()
        tree = CompactTree()
        if last is not None:
            tree = CompactTree(int(last["_id"]), [bytes.fromhex(p) for p in last["peaks"]])
            signed = open_note(last["note"], key.public_key(), origin=origin)
            if signed.size != tree.size or signed.root != tree.root():
                raise LedgerInconsistent(f"the latest tree head (size {tree.size}) does not match its stored state")
        start, leaves = tree.size, []
        async for record in self.records_from(tree.size):
            index = int(record["leaf_index"])
            if index != tree.size:
                log.error("gap in the ledger: no record at leaf %d", tree.size)
                break
            leaf = record_leaf_hash(record)
            if leaf.hex() != record.get("leaf_hash"):
                raise LedgerInconsistent(f"record at leaf {index} changed since it was appended")
            tree.append(leaf)
            leaves.append(leaf)
        self.signed_leaves = (start, leaves)
        if not force and (tree.size == 0 or (last is not None and tree.size == int(last["_id"]))):
            return None
        checkpoint = make_checkpoint(origin, tree.size, tree.root(), now)
        head = {"_id": tree.size, "root": tree.root().hex(), "peaks": [p.hex() for p in tree.peaks],
                "timestamp": checkpoint.timestamp, "origin": origin, "note": checkpoint.sign(key)}
        try:
            await self.heads.insert_one(head)
        except DuplicateKeyError:
            return await self.heads.find_one({"_id": tree.size})  # another signer was first: same size, same root
        return head

    async def witness_state(self) -> dict[str, Any]:
        """What the witness last cosigned for this log, as far as this node knows (``size`` 0 if nothing)."""
        return await self.state.find_one({"_id": WITNESS_STATE}) or {"_id": WITNESS_STATE, "size": 0}

    async def record_witnessed(self, size: int, cosigned_note: str, at: datetime) -> None:
        """The witness cosigned the head of ``size``: keep its cosigned note in the state (heads stay insert-only)."""
        await self.state.update_one({"_id": WITNESS_STATE}, {"$set": {
            "size": size, "cosigned_size": size, "cosigned_note": cosigned_note, "witnessed_at": at,
            "last_error": None, "witness_reported_size": None, "reanchor_to": None}}, upsert=True)

    async def record_witness_error(self, known_size: int | None, error: str, at: datetime, *,
                                   reported_size: int | None = None) -> None:
        """A submission failed (the witness is down, or refused): the heads after the witnessed size stay pending.
        ``reported_size``: the size a witness that went back reported (kept apart from ``size``, never followed)."""
        update: dict[str, Any] = {"last_error": error[:500], "last_error_at": at}
        if known_size is not None:
            update["size"] = known_size
        if reported_size is not None:
            update["witness_reported_size"] = reported_size
        await self.state.update_one({"_id": WITNESS_STATE}, {"$set": update}, upsert=True)

    async def allow_witness_reanchor(self, size: int, at: datetime) -> None:
        """An operator allows the next submission to follow the witness back to ``size`` (once: cleared on success)."""
        await self.state.update_one({"_id": WITNESS_STATE}, {"$set": {"reanchor_to": size, "reanchor_allowed_at": at}},
                                    upsert=True)

    async def get_cursor(self, name: str) -> int:
        state = await self.state.find_one({"_id": name})
        return int(state["next_leaf"]) if state else 0

    async def set_cursor(self, name: str, next_leaf: int) -> None:
        await self.state.update_one({"_id": name}, {"$set": {"next_leaf": next_leaf}}, upsert=True)
