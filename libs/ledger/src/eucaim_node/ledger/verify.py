"""Verification of a whole ledger: every record rehashed, the tree recomputed, every signed head checked.

:class:`LedgerVerifier` is pure: feed it the heads, then the records in leaf order (as stored), then
``finish()``. It keeps O(log n) tree state plus the records whose leaf hash does not match (at most
1000, to tell an edit from a move), so :func:`verify_ledger`, which streams the records through it
from the reader port in batches, runs in time linear in the records and memory bounded whatever their
number (measured in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .canonical import record_leaf_hash
from .checkpoint import Checkpoint, HeadError, open_note
from .merkle import CompactTree
from .ports import LedgerReader

#: Kinds of finding, in the words the CLI prints.
KINDS = {
    "edited": "record content does not match its leaf hash (edited)",
    "moved": "record sits at another leaf than the one it was appended at (reordered, or shifted by an insertion or deletion)",
    "missing": "no record at this leaf (deleted)",
    "duplicate-index": "two records claim this leaf (inserted)",
    "outside-tree": "record has no leaf (inserted outside the ledger)",
    "head-mismatch": "signed tree head does not match the records (records rewritten, inserted, deleted or reordered)",
    "forged-head": "tree head signature does not verify with the trusted key (forged head)",
    "truncated": "a signed tree head covers more leaves than the ledger holds (records deleted at the end)",
}
_MAX_SUSPECTS = 1000
_PRIORITY = ("forged-head", "missing", "duplicate-index", "edited", "moved", "outside-tree", "head-mismatch", "truncated")


@dataclass(frozen=True)
class Finding:
    kind: str
    leaf: int | None
    record_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"leaf {self.leaf}" if self.leaf is not None else "ledger"
        who = f" (record {self.record_id})" if self.record_id else ""
        return f"{where}{who}: {KINDS[self.kind]}; {self.message}"


@dataclass
class Report:
    records: int = 0
    heads_verified: int = 0
    latest_signed_size: int = 0
    root: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def ordered(self) -> list[Finding]:
        """Findings by leaf; at one leaf, the most specific first (a record's own finding before a head's)."""
        return sorted(self.findings, key=lambda f: (f.leaf if f.leaf is not None else -1, _PRIORITY.index(f.kind)))

    def first(self) -> Finding | None:
        ordered = self.ordered()
        return ordered[0] if ordered else None

    @property
    def unsigned_tail(self) -> int:
        return self.records - self.latest_signed_size


class LedgerVerifier:
    def __init__(self, public_key: Ed25519PublicKey, origin: str, heads: Iterable[dict[str, Any]]) -> None:
        """``heads``: stored head documents (``note``, ``_id``) or ``{"note": …, "source": "witness"}`` from a
        witness (its findings then name it)."""
        self.report = Report()
        self.tree = CompactTree()
        self._checkpoints: list[tuple[Checkpoint, str]] = []
        for head in heads:
            claimed = head.get("_id")
            source = str(head.get("source", "signed"))
            try:
                checkpoint = open_note(str(head.get("note", "")), public_key, origin=origin)
            except HeadError as exc:
                size = claimed if isinstance(claimed, int) else None
                self.report.findings.append(Finding("forged-head", size, None, f"{source} head of size {claimed}: {exc}"))
                continue
            if claimed is not None and claimed != checkpoint.size:
                self.report.findings.append(Finding("forged-head", checkpoint.size, None,
                                                    f"stored as size {claimed}, signed for size {checkpoint.size}"))
                continue
            self._checkpoints.append((checkpoint, source))
        self._checkpoints.sort(key=lambda c: c[0].size, reverse=True)  # pop() gives the smallest
        self._suspects: list[tuple[int, dict[str, Any]]] = []
        self._expected = 0
        #: After a missing or duplicate leaf the recomputed tree no longer lines up with the indices:
        #: later heads are not compared (the first finding stands; record-level checks go on).
        self._broken = False
        self._check_heads()

    def _check_heads(self) -> None:
        if self._broken:
            return
        while self._checkpoints and self._checkpoints[-1][0].size <= self.tree.size:
            checkpoint, source = self._checkpoints.pop()
            if checkpoint.size == self.tree.size:
                if checkpoint.root == self.tree.root():
                    self.report.heads_verified += 1
                    self.report.latest_signed_size = max(self.report.latest_signed_size, checkpoint.size)
                else:
                    self.report.findings.append(Finding(
                        "head-mismatch", checkpoint.size - 1 if checkpoint.size else None, None,
                        f"{source} head of size {checkpoint.size} signed at {checkpoint.timestamp} has root "
                        f"{checkpoint.root.hex()[:16]}…, the records give {self.tree.root().hex()[:16]}… "
                        f"(the change lies in the leaves before {checkpoint.size} and after the previous good head)"))

    def feed(self, record: dict[str, Any]) -> None:
        expected = self._expected
        index = record.get("leaf_index")
        record_id = str(record.get("_id"))
        if not isinstance(index, int):
            self.report.findings.append(Finding("outside-tree", None, record_id, "it was not appended by the audit service"))
            return
        if index > expected:
            self.report.findings.append(Finding("missing", expected, None, f"leaves {expected}..{index - 1} are absent"))
            self._broken = True
        elif index < expected:
            self.report.findings.append(Finding("duplicate-index", index, record_id, "a second record at an earlier leaf"))
            self._broken = True
            return
        self._expected = index + 1
        self.report.records += 1
        leaf = record_leaf_hash(record)
        if record.get("leaf_hash") != leaf.hex() and len(self._suspects) < _MAX_SUSPECTS:
            self._suspects.append((index, dict(record)))
        self.tree.append(leaf)
        self._check_heads()

    def finish(self, outside_tree: Iterable[str] = ()) -> Report:
        for record_id in outside_tree:
            self.report.findings.append(Finding("outside-tree", None, record_id, "it was not appended by the audit service"))
        for checkpoint, source in [] if self._broken else reversed(self._checkpoints):
            self.report.findings.append(Finding("truncated", self.tree.size, None,
                                                f"{source} head of size {checkpoint.size}, but only {self.tree.size} leaves"))
        self._checkpoints = []
        indices = [i for i, _ in self._suspects]
        for index, record in self._suspects:
            moved_from = next((other for other in indices if other != index and
                               record_leaf_hash({**record, "leaf_index": other}).hex() == record.get("leaf_hash")), None)
            if moved_from is None and record.get("leaf_hash"):
                moved_from = next((other for other in (index - 1, index + 1) if other >= 0 and
                                   record_leaf_hash({**record, "leaf_index": other}).hex() == record.get("leaf_hash")), None)
            if moved_from is not None:
                self.report.findings.append(Finding("moved", index, str(record.get("_id")),
                                                    f"it was appended at leaf {moved_from}"))
            else:
                self.report.findings.append(Finding("edited", index, str(record.get("_id")),
                                                    "its content changed after it was appended"))
        self.report.root = self.tree.root().hex()
        return self.report


async def verify_ledger(reader: LedgerReader, public_key: Ed25519PublicKey, origin: str,
                        extra_heads: Iterable[dict[str, Any]] = ()) -> Report:
    """Verify every stored record and head, and ``extra_heads`` kept elsewhere (``--head`` files, the witness's)."""
    verifier = LedgerVerifier(public_key, origin, [*await reader.signed_heads(), *extra_heads])
    async for record in reader.records_by_leaf():
        verifier.feed(record)
    return verifier.finish(await reader.records_outside_tree())
