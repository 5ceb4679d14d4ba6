"""The tamper-evident audit ledger's pure parts: RFC 9162 Merkle tree, canonical records, signed tree
heads (C2SP checkpoints, Ed25519), FHIR AuditEvent / DICOM audit message exports, RFC 5424/5425 syslog."""

from .canonical import canonical_bytes, format_time, normalise, record_leaf_hash, to_millis
from .checkpoint import (
    Checkpoint,
    HeadError,
    SigningKeyError,
    load_private_key,
    load_public_key,
    make_checkpoint,
    open_note,
    public_pem,
    verifier_key,
)
from .merkle import (
    CompactTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "Checkpoint",
    "CompactTree",
    "HeadError",
    "ProofError",
    "SigningKeyError",
    "canonical_bytes",
    "consistency_proof",
    "format_time",
    "inclusion_proof",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "make_checkpoint",
    "node_hash",
    "normalise",
    "open_note",
    "public_pem",
    "record_leaf_hash",
    "root",
    "to_millis",
    "verifier_key",
    "verify_consistency",
    "verify_inclusion",
]
