"""Witness cosignatures on checkpoints: c2sp.org/tlog-cosignature, the Ed25519 ``cosignature/v1`` type.

A cosignature is one more signed-note signature line on a checkpoint::

    — <witness name> base64(key id || u64 big-endian timestamp || Ed25519 signature)

with key id = SHA-256(name || "\\n" || 0x04 || public key)[:4] ("Format"), over the message
``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's whole note body, extension
lines included ("Ed25519 signed message"). It states: as of that time, this is the largest
consistent tree head the witness has seen for the log.

Pure: no I/O, no clock (the caller passes the time).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .checkpoint import HeadError, key_id, parse_verifier_key, signatures_by, verifier_key

COSIGNATURE_V1 = b"\x04"  # signed-note signature type of an Ed25519 cosignature/v1
_DASH = "\u2014"
_MAX_TIMESTAMP = 2**63 - 1


@dataclass(frozen=True)
class Cosignature:
    name: str
    timestamp: int
    line: str


def split_note(note: str) -> tuple[str, list[str]]:
    """(body including its final newline, signature lines) of a signed note (c2sp.org/signed-note)."""
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise HeadError("not a signed note: no blank line before the signatures")
    return body + "\n", [line for line in signatures.split("\n") if line]


def cosigner_key_id(name: str, public: Ed25519PublicKey) -> bytes:
    return key_id(name, public, COSIGNATURE_V1)


def cosigner_verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """``name+hex(key id)+base64(0x04 || key)``: how a witness's key is published and configured."""
    return verifier_key(name, public, COSIGNATURE_V1)


def parse_cosigner_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    return parse_verifier_key(vkey, COSIGNATURE_V1)


def signed_message(body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosignature/v1 signs (tlog-cosignature, "Ed25519 signed message")."""
    if body.count("\n") < 3 or not body.endswith("\n"):
        raise HeadError("a checkpoint body is at least three newline-terminated lines")
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(body: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> str:
    """The cosignature line (with its newline) of ``name`` on the checkpoint ``body`` at ``timestamp``."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("a cosignature timestamp is between 0 and 2^63-1")
    signature = private.sign(signed_message(body, timestamp))
    blob = cosigner_key_id(name, private.public_key()) + struct.pack(">Q", timestamp) + signature
    return f"{_DASH} {name} {base64.b64encode(blob).decode()}\n"


def open_cosignature(note: str, name: str, public: Ed25519PublicKey) -> Cosignature:
    """The cosignature of witness ``name`` (key ``public``) on ``note``; lines of other keys are ignored.

    Raises HeadError if there is none, or if the one with this key id does not verify."""
    body, lines = split_note(note)
    for line, blob in signatures_by(lines, name, cosigner_key_id(name, public)):
        if len(blob) != 4 + 8 + 64:
            continue
        (timestamp,) = struct.unpack(">Q", blob[4:12])
        if timestamp > _MAX_TIMESTAMP:
            raise HeadError(f"cosignature of {name} has an out-of-range timestamp")
        try:
            public.verify(blob[12:], signed_message(body, timestamp))
        except InvalidSignature:
            raise HeadError(f"the cosignature of witness {name} does not verify with its key") from None
        return Cosignature(name, timestamp, line + "\n")
    raise HeadError(f"no cosignature by witness {name} with the configured key")

