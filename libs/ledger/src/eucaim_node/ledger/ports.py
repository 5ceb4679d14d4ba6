"""What the ledger's operations (verify, prove, export, witness submissions) need from where the ledger is stored.

One reader port over the stored records, signed heads and stored subtree hashes; the MongoDB adapter is
:class:`eucaim_node.ledger.store.MongoLedgerReader`. Nothing read through it is trusted: verification recomputes
every leaf, and every proof is checked against a signed head before anyone relies on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import datetime
from typing import Any, Protocol

from .merkle import Node


class LedgerInconsistent(RuntimeError):
    """The stored ledger does not match itself (a record edited since it was appended, a bad head, a missing leaf)."""


class LedgerReader(Protocol):
    async def signed_heads(self) -> list[dict[str, Any]]:
        """Every signed tree head (``_id`` = size, ``note``), smallest first."""

    async def latest_head(self) -> dict[str, Any] | None: ...

    async def signed_head(self, size: int) -> dict[str, Any] | None:
        """The signed head of that size, read by key."""

    async def record(self, record_id: str) -> dict[str, Any] | None: ...

    def records_by_leaf(self) -> AsyncIterator[dict[str, Any]]:
        """Every record that has a leaf, in leaf order, streamed (bounded memory however many there are)."""

    async def records_outside_tree(self) -> list[str]:
        """IDs of records without a leaf."""

    def records_recorded(self, since: datetime, until: datetime | None) -> AsyncIterator[dict[str, Any]]:
        """Records with a leaf recorded in [since, until), in leaf order, streamed."""

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        """The stored hashes of those of ``wanted`` that are stored: the leaf and subtree hashes the audit service
        keeps under its latest signed head (:class:`~eucaim_node.ledger.store.TreeNodeIndex`), by key."""

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """The stored leaf hashes of leaves start..end-1; LedgerInconsistent if one is missing."""


class CountingReader:
    """A reader that counts what proofs cost: the hashes read (``nodes`` and ``leaf_hashes``) and the round trips.
    The instrument behind the O(log n) claim of decision 0115 (scripts/bench/audit.py, tests/test_audit_store.py)."""

    def __init__(self, reader: LedgerReader) -> None:
        self.reader = reader
        self.hashes_read = self.port_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def reset(self) -> None:
        self.hashes_read = self.port_calls = 0

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        found = await self.reader.nodes(wanted)
        self.port_calls += 1
        self.hashes_read += len(found)
        return found

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        found = await self.reader.leaf_hashes(start, end)
        self.port_calls += 1
        self.hashes_read += len(found)
        return found
