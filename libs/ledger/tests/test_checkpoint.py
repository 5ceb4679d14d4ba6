import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.ledger.canonical import canonical_bytes, normalise, record_leaf_hash
from eucaim_node.ledger.checkpoint import (
    HeadError,
    SigningKeyError,
    load_private_key,
    load_public_key,
    make_checkpoint,
    open_note,
    public_pem,
    verifier_key,
)
from eucaim_node.ledger.merkle import leaf_hash

ROOT = leaf_hash(b"root")


def test_signed_checkpoint_round_trips_and_has_the_signed_note_shape(tmp_path):
    key = load_private_key(tmp_path / "k.pem", generate=True)
    note = make_checkpoint("node.example/audit", 42, ROOT).sign(key)
    body, signature = note.split("\n\n")
    assert body.split("\n") == ["node.example/audit", "42", base64.b64encode(ROOT).decode()]
    assert signature.startswith("\u2014 node.example/audit ")
    head = open_note(note, key.public_key(), origin="node.example/audit")
    assert (head.size, head.root) == (42, ROOT)
    assert verifier_key("node.example/audit", key.public_key()).startswith("node.example/audit+")


@pytest.mark.parametrize("forge", [
    lambda n: n.replace("\n42\n", "\n43\n"),
    lambda n: n.replace(base64.b64encode(ROOT).decode(), base64.b64encode(leaf_hash(b"x")).decode()),
    lambda n: n.replace("node.example/audit\n", "other/audit\n", 1),
    lambda n: n.rsplit(" ", 1)[0] + " " + base64.b64encode(b"\0" * 68).decode() + "\n",
    lambda n: n.split("\n\n")[0] + "\n",
])
def test_a_forged_or_altered_checkpoint_is_rejected(tmp_path, forge):
    key = load_private_key(tmp_path / "k.pem", generate=True)
    note = make_checkpoint("node.example/audit", 42, ROOT).sign(key)
    with pytest.raises(HeadError):
        open_note(forge(note), key.public_key(), origin="node.example/audit")


def test_a_head_signed_by_another_key_is_rejected(tmp_path):
    trusted = load_private_key(tmp_path / "k.pem", generate=True)
    note = make_checkpoint("node.example/audit", 1, ROOT).sign(Ed25519PrivateKey.generate())
    with pytest.raises(HeadError, match="no signature by the trusted key"):
        open_note(note, trusted.public_key())


def test_key_is_generated_only_when_allowed_with_mode_0600(tmp_path):
    with pytest.raises(SigningKeyError, match="does not exist"):
        load_private_key(tmp_path / "missing.pem")
    key = load_private_key(tmp_path / "new.pem", generate=True)
    assert stat.S_IMODE(os.stat(tmp_path / "new.pem").st_mode) == 0o600
    again = load_private_key(tmp_path / "new.pem", generate=True)  # never overwritten
    assert public_pem(again.public_key()) == public_pem(key.public_key())
    (tmp_path / "pub.pem").write_text(public_pem(key.public_key()))
    assert public_pem(load_public_key(tmp_path / "pub.pem")) == public_pem(key.public_key())
    (tmp_path / "bad.pem").write_bytes(b"not a key")
    with pytest.raises(SigningKeyError):
        load_private_key(tmp_path / "bad.pem")


def test_canonical_bytes_are_rfc8785_and_survive_a_mongodb_round_trip():
    from datetime import UTC, datetime

    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    record = normalise({"b": 1, "a": {"y": [1, 2], "x": at}, "leaf_hash": "ignored"})
    assert canonical_bytes(record) == b'{"a":{"x":"2026-01-02T03:04:05.678Z","y":[1,2]},"b":1}'
    assert record["a"]["x"].microsecond == 678000
    edited = dict(record, b=2)
    assert record_leaf_hash(record) != record_leaf_hash(edited)
    assert record_leaf_hash(record) == record_leaf_hash(dict(record, leaf_hash="anything"))
