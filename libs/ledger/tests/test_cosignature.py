"""Cosignatures (c2sp.org/tlog-cosignature) and verifier keys, against published values where they exist."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.ledger.checkpoint import HeadError, SigningKeyError, key_id, make_checkpoint, parse_verifier_key
from eucaim_node.ledger.cosignature import (
    cosign,
    cosigner_key_id,
    cosigner_verifier_key,
    open_cosignature,
    parse_cosigner_verifier_key,
    signed_message,
    split_note,
)
from eucaim_node.ledger.merkle import leaf_hash

# Verifier keys published in transparency-dev/formats, note/note_cosigv1_test.go
# (TestCoSigV1NewVerifier): the key ids there were computed by the Go reference code.
PUBLISHED_COSIGNER_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
PUBLISHED_ED25519_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
ORIGIN = "node.example/audit"


def test_key_ids_match_the_published_verifier_keys():
    name, public = parse_cosigner_verifier_key(PUBLISHED_COSIGNER_VKEY)
    assert (name, cosigner_key_id(name, public).hex()) == ("remora.n621.de", "da77ade7")
    assert cosigner_verifier_key(name, public) == PUBLISHED_COSIGNER_VKEY
    name, public = parse_verifier_key(PUBLISHED_ED25519_VKEY)  # base64 holding '+' is split correctly
    assert (name, key_id(name, public).hex()) == ("TEST", "7997405c")


@pytest.mark.parametrize("vkey", [
    "remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # wrong key id
    PUBLISHED_ED25519_VKEY,  # type 0x01, not a cosigner key
    "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
    "only+two",
])
def test_a_wrong_cosigner_verifier_key_is_refused(vkey):
    with pytest.raises(SigningKeyError):
        parse_cosigner_verifier_key(vkey)


def test_the_signed_message_is_the_spec_layout():
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    # tlog-cosignature, "Ed25519 signed message": header line, time line, then the whole body.
    assert signed_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")


def _cosigned_note(timestamp: int = 1_800_000_000) -> str:
    note = make_checkpoint(ORIGIN, 7, leaf_hash(b"x")).sign(LOG_KEY)
    body, _ = split_note(note)
    return note + cosign(body, "witness.example", WITNESS_KEY, timestamp)


def test_a_cosignature_line_has_key_id_timestamp_and_signature_and_verifies():
    note = _cosigned_note()
    line = note.splitlines()[-1]
    dash, name, blob = line.split(" ")
    raw = base64.b64decode(blob)
    assert (dash, name, len(raw)) == ("\u2014", "witness.example", 76)
    assert raw[:4] == cosigner_key_id("witness.example", WITNESS_KEY.public_key())
    assert int.from_bytes(raw[4:12], "big") == 1_800_000_000
    cosignature = open_cosignature(note, "witness.example", WITNESS_KEY.public_key())
    assert cosignature.timestamp == 1_800_000_000
    # Ed25519 is deterministic: the same key, body and time give the same line (a regression anchor).
    assert cosignature.line == _cosigned_note().splitlines()[-1] + "\n"


@pytest.mark.parametrize("tamper", [
    lambda n: n.replace("\n7\n", "\n8\n", 1),  # another size under the old cosignature
    lambda n: n.rsplit("\n", 2)[0] + "\n",  # cosignature removed
    lambda n: n.replace("witness.example", "other.witness"),  # another witness's name
])
def test_a_missing_or_altered_cosignature_is_refused(tamper):
    with pytest.raises(HeadError):
        open_cosignature(tamper(_cosigned_note()), "witness.example", WITNESS_KEY.public_key())


def test_a_cosignature_by_another_key_is_not_the_witnesses():
    note = make_checkpoint(ORIGIN, 7, leaf_hash(b"x")).sign(LOG_KEY)
    forged = note + cosign(split_note(note)[0], "witness.example", Ed25519PrivateKey.generate(), 1)
    with pytest.raises(HeadError, match="no cosignature"):
        open_cosignature(forged, "witness.example", WITNESS_KEY.public_key())
