"""RFC 9162 tree, inclusion and consistency proofs: known answers, an independent implementation, tampering."""

import hashlib
import random

import pytest
from pymerkle import InmemoryTree

from eucaim_node.ledger.merkle import (
    EMPTY_ROOT,
    CompactTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# The reference inputs and roots of the Certificate Transparency test suite (RFC 6962/9162 hashing).
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]


def hashes(n: int) -> list[bytes]:
    return [leaf_hash(f"record {i}".encode()) for i in range(n)]


def test_leaf_and_node_hashing_are_domain_separated():
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # A two-leaf tree's root is not the leaf hash of the concatenated leaf hashes.
    assert root([a, b]) != leaf_hash(a + b)
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_roots_match_the_certificate_transparency_reference_values():
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    assert [root(leaves[:n]).hex() for n in range(1, 9)] == CT_ROOTS


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100, 257])
def test_roots_match_an_independent_implementation(n):
    data = [f"record {i}".encode() for i in range(n)]
    reference = InmemoryTree(algorithm="sha256")
    for d in data:
        reference.append_entry(d)
    leaves = [leaf_hash(d) for d in data]
    for size in {1, n // 2 or 1, n}:
        assert root(leaves[:size]) == reference.get_root(size)


def test_compact_tree_equals_full_recomputation_at_every_size_and_can_resume():
    leaves = hashes(70)
    tree = CompactTree()
    for i, leaf in enumerate(leaves):
        tree.append(leaf)
        assert tree.root() == root(leaves[: i + 1])
    resumed = CompactTree(40, _peaks(leaves[:40]))
    resumed.extend(leaves[40:])
    assert resumed.root() == tree.root()
    with pytest.raises(ValueError):
        CompactTree(5, [leaves[0]])


def _peaks(leaves):
    tree = CompactTree()
    tree.extend(leaves)
    return tree.peaks


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 9, 31, 100])
def test_every_inclusion_proof_verifies_and_fails_when_anything_is_altered(n):
    leaves = hashes(n)
    head = root(leaves)
    for index in range(n):
        path = inclusion_proof(index, leaves)
        verify_inclusion(index, n, leaves[index], path, head)
        with pytest.raises(ProofError):
            verify_inclusion(index, n, leaf_hash(b"forged"), path, head)
        if path:
            forged = list(path)
            forged[random.Random(index).randrange(len(path))] = leaf_hash(b"x")
            with pytest.raises(ProofError):
                verify_inclusion(index, n, leaves[index], forged, head)
            with pytest.raises(ProofError):
                verify_inclusion(index, n, leaves[index], path[:-1], head)
        if n > 1:
            with pytest.raises(ProofError):
                verify_inclusion((index + 1) % n, n, leaves[index], path, head)
    with pytest.raises(ProofError):
        root_from_inclusion(n, n, leaves[0], [])


def test_ct_reference_inclusion_path():
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    # leaf 0 of 8: the CT test suite's path
    assert [p.hex() for p in inclusion_proof(0, leaves)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 9, 33, 100])
def test_every_consistency_proof_verifies_and_fails_when_altered(n):
    leaves = hashes(n)
    second = root(leaves)
    for m in range(1, n + 1):
        first = root(leaves[:m])
        path = consistency_proof(m, leaves)
        verify_consistency(m, n, first, second, path)
        with pytest.raises(ProofError):
            verify_consistency(m, n, leaf_hash(b"other"), second, path)
        with pytest.raises(ProofError):
            verify_consistency(m, n, first, leaf_hash(b"other"), path)
        if path:
            forged = list(path)
            forged[0] = leaf_hash(b"x")
            with pytest.raises(ProofError):
                verify_consistency(m, n, first, second, forged)


def test_a_rewritten_history_has_no_consistency_proof():
    leaves = hashes(20)
    old_root = root(leaves[:12])
    rewritten = list(leaves)
    rewritten[5] = leaf_hash(b"edited")
    with pytest.raises(ProofError):
        verify_consistency(12, 20, old_root, root(rewritten), consistency_proof(12, rewritten))
