"""The witness's decisions (c2sp.org/tlog-witness, add-checkpoint), without HTTP or storage."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.ledger.checkpoint import make_checkpoint, verifier_key
from eucaim_node.ledger.cosignature import open_cosignature
from eucaim_node.ledger.merkle import consistency_proof, leaf_hash, root
from eucaim_node.witness.core.checkpoints import (
    MAX_BODY_BYTES,
    Refusal,
    accept,
    check_submission,
    parse_logs,
    parse_submission,
)

ORIGIN = "node.example/audit"
LOG = Ed25519PrivateKey.generate()
WITNESS = Ed25519PrivateKey.generate()
LOGS = {ORIGIN: LOG.public_key()}
LEAVES = [leaf_hash(str(i).encode()) for i in range(20)]


def body(old: int, size: int, proof=(), leaves=LEAVES, key=LOG, origin=ORIGIN) -> bytes:
    note = make_checkpoint(origin, size, root(leaves[:size])).sign(key)
    lines = [f"old {old}", *(base64.b64encode(p).decode() for p in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def submit(raw: bytes, latest=None):
    submission = parse_submission(raw)
    checkpoint = check_submission(submission, LOGS, latest)
    return accept(submission, checkpoint, "witness.example", WITNESS, 1_800_000_000)


def refused(raw: bytes, latest=None) -> Refusal:
    with pytest.raises(Refusal) as caught:
        submit(raw, latest)
    return caught.value


def test_first_checkpoint_then_a_consistent_one_are_cosigned():
    first = submit(body(0, 5))
    assert first.latest.size == 5
    open_cosignature(first.latest.note, "witness.example", WITNESS.public_key())
    second = submit(body(5, 12, consistency_proof(5, LEAVES[:12])), first.latest)
    assert (second.latest.size, second.checkpoint.root) == (12, root(LEAVES[:12]))
    assert second.cosignature.startswith("\u2014 witness.example ") and second.cosignature.endswith("\n")
    assert submit(body(12, 12), second.latest).latest.size == 12  # the same head again: cosigned again


def test_a_stale_old_size_is_409_with_the_witnessed_size():
    latest = submit(body(0, 12)).latest
    refusal = refused(body(5, 15, consistency_proof(5, LEAVES[:15])), latest)
    assert (refusal.status, refusal.body, refusal.content_type) == (409, "12\n", "text/x.tlog.size")
    assert refused(body(0, 3), latest).status == 409  # a rollback to a smaller tree


def test_a_fork_is_refused():
    latest = submit(body(0, 12)).latest
    forked = list(LEAVES)
    forked[3] = leaf_hash(b"rewritten")
    same_size = refused(body(12, 12, leaves=forked), latest)
    assert same_size.status == 409 and "fork" in str(same_size)
    larger = refused(body(12, 15, consistency_proof(12, forked[:15]), leaves=forked), latest)
    assert larger.status == 422


@pytest.mark.parametrize("raw,status", [
    (body(0, 5, key=Ed25519PrivateKey.generate()), 403),
    (body(0, 5, origin="other.example/log"), 404),
    (body(6, 5), 400),
    (b"old 01\n\n" + body(0, 5).split(b"\n\n", 1)[1], 400),
    (b"new 0\n\n" + body(0, 5).split(b"\n\n", 1)[1], 400),
    (b"old 0\nnot-base64!\n\n" + body(0, 5).split(b"\n\n", 1)[1], 400),
    (b"old 0\n" + b"\n".join([base64.b64encode(b"\0" * 32)] * 64) + b"\n\n" + body(0, 5).split(b"\n\n", 1)[1], 400),
    (b"old 0", 400),
    (b"\xff\xfe", 400),
    (b"x" * (MAX_BODY_BYTES + 1), 413),
])
def test_bad_requests_get_the_specified_status(raw, status):
    assert refused(raw).status == status


def test_a_nonempty_proof_from_size_zero_is_refused():
    assert refused(body(0, 5, consistency_proof(2, LEAVES[:5]))).status == 422


def test_the_logs_file_lists_verifier_keys():
    text = f"# witnessed logs\n\n{verifier_key(ORIGIN, LOG.public_key())}\n"
    assert parse_logs(text).keys() == {ORIGIN}
    with pytest.raises(ValueError, match="line 1"):
        parse_logs("not a key")
    with pytest.raises(ValueError, match="twice"):
        parse_logs(text + text)
