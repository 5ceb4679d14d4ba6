"""An in-memory ledger behind the reader port (``eucaim_node.ledger.ports.LedgerReader``); wrap it in
``ports.CountingReader`` to count what a proof reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import datetime
from typing import Any

from eucaim_node.ledger.merkle import CompactTree, Node
from eucaim_node.ledger.ports import LedgerInconsistent


class MemoryLedger:
    """Leaf hashes, the leaf and subtree hashes up to ``indexed`` leaves (as TreeNodeIndex stores them),
    optional records and heads."""

    def __init__(self, hashes: list[bytes], *, indexed: int | None = None, records: list[dict[str, Any]] | None = None,
                 heads: list[dict[str, Any]] | None = None) -> None:
        self.hashes = hashes
        self.records_list = records or []
        self.heads = heads or []
        self.stored: dict[Node, bytes] = {}
        tree, completed = CompactTree(), []
        for i, leaf in enumerate(hashes[: len(hashes) if indexed is None else indexed]):
            completed.append((0, i, leaf))
            tree.append(leaf, completed)
        self.stored = {(level, index): digest for level, index, digest in completed}

    async def signed_heads(self) -> list[dict[str, Any]]:
        return list(self.heads)

    async def latest_head(self) -> dict[str, Any] | None:
        return self.heads[-1] if self.heads else None

    async def signed_head(self, size: int) -> dict[str, Any] | None:
        return next((h for h in self.heads if h["_id"] == size), None)

    async def record(self, record_id: str) -> dict[str, Any] | None:
        return next((r for r in self.records_list if r["_id"] == record_id), None)

    async def records_by_leaf(self) -> AsyncIterator[dict[str, Any]]:
        for record in sorted(self.records_list, key=lambda r: r["leaf_index"]):
            yield record

    async def records_outside_tree(self) -> list[str]:
        return []

    async def records_recorded(self, since: datetime, until: datetime | None) -> AsyncIterator[dict[str, Any]]:
        for record in sorted(self.records_list, key=lambda r: r["leaf_index"]):
            yield record

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        return {n: self.stored[n] for n in wanted if n in self.stored}

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        if end > len(self.hashes):
            raise LedgerInconsistent(f"leaf {len(self.hashes)} is missing: the ledger has fewer leaves than {end}")
        return self.hashes[start:end]
