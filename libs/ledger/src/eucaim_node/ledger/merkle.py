"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1.

Leaves and interior nodes are hashed differently (``0x00`` and ``0x01`` prefixes), so a leaf can
never be passed off as a node (second-preimage resistance). Trees of any size are supported; the
tree of ``n`` leaves is the same whether it is built at once or appended to one leaf at a time,
which is what makes consistency proofs between two signed tree heads possible.

Everything here works on leaf *hashes* (``leaf_hash(data)``), so a verifier holding only the
hashes can recompute roots and proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify (or is malformed)."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactTree:
    """The right edge of a tree: the roots of its perfect subtrees, largest first.

    ``append`` is amortised O(1), ``root`` O(log n); memory O(log n). This is how the audit
    service and the verifier compute roots while streaming leaves.
    """

    __slots__ = ("size", "_peaks")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if len(peaks) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} perfect subtrees, not {len(peaks)}")
        self.size = size
        self._peaks = list(peaks)

    @property
    def peaks(self) -> tuple[bytes, ...]:
        return tuple(self._peaks)

    def append(self, leaf: bytes, completed: list[tuple[int, int, bytes]] | None = None) -> None:
        """Add a leaf; ``completed`` (if given) receives each perfect subtree of level >= 1 this completes, as
        ``(level, index, hash)`` (what :class:`~eucaim_node.ledger.store.TreeNodeIndex` stores)."""
        node = leaf
        size = self.size
        level = 0
        while size & 1:  # merge equal-sized perfect subtrees
            node = node_hash(self._peaks.pop(), node)
            size >>= 1
            level += 1
            if completed is not None:
                completed.append((level, size, node))
        self._peaks.append(node)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes."""
    tree = CompactTree()
    tree.extend(leaves)
    return tree.root()


def _mth(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    tree = CompactTree()
    for i in range(start, end):
        tree.append(leaves[i])
    return tree.root()


#: A subtree of the RFC 9162 tree, as the leaf range [start, end) it covers.
Range = tuple[int, int]
#: A perfect subtree: (level, index) covers leaves [index << level, (index + 1) << level); level 0 is a leaf.
Node = tuple[int, int]


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose roots are PATH(index, D[size]) of RFC 9162 2.1.3.1, leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[Range] = []
    start, end, m = 0, size, index
    # Walk down from the root; collect siblings, then reverse (the proof lists them leaf first).
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m = start + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, size: int) -> list[Range]:
    """The subtrees whose roots are PROOF(first, D[size]) of RFC 9162 2.1.4.1."""
    if not 0 < first <= size:
        raise ValueError(f"no consistency proof from {first} to {size} leaves")
    ranges: list[Range] = []
    start, end, m, whole = 0, size, first, True
    while m != end - start:  # SUBPROOF(m, D[start:end], whole)
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees a subtree of the RFC tree splits into, left to right (at most log2 of its width).

    A subtree [start, end) of the tree is either perfect, or its left child is the largest perfect subtree
    that fits and its right child splits the same way (RFC 9162 2.1.1: k is the largest power of two < n), so
    its root is these nodes' hashes folded from the right (:func:`fold`)."""
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):  # not aligned at that width: not a node of the tree
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of adjacent perfect subtrees given left to right, largest first (as :func:`perfect_nodes` lists them)."""
    node = hashes[-1]
    for left in reversed(hashes[:-1]):
        node = node_hash(left, node)
    return node


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1, for the tree of all of ``leaves``."""
    return [_mth(leaves, a, b) for a, b in inclusion_ranges(index, len(leaves))]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1: the tree of ``first`` leaves is a prefix of the tree of all of ``leaves``."""
    return [_mth(leaves, a, b) for a, b in consistency_ranges(first, len(leaves))]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2, steps 1-4); raises ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes) -> None:
    """RFC 9162 2.1.3.2. Raises ProofError unless ``leaf`` is leaf ``index`` of the tree with ``expected_root``."""
    if root_from_inclusion(index, size, leaf, path) != expected_root:
        raise ProofError("inclusion proof does not lead to the tree head's root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2. Raises ProofError unless the tree ``first_root`` is a prefix of the tree ``second_root``."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency between sizes {first} and {second}")
    if first == second:
        if path or first_root != second_root:
            raise ProofError("trees of equal size must have equal roots and an empty proof")
        return
    if not path:
        raise ProofError("empty consistency proof")
    path = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a subtree itself
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofError("consistency proof does not match the two tree heads")
