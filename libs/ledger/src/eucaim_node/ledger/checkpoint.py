"""Signed tree heads as C2SP *checkpoints* in *signed-note* format, signed with Ed25519.

A checkpoint is the text::

    <origin>\\n<tree size>\\n<base64 root hash>\\n[timestamp <RFC 3339>\\n]

followed by a blank line and one signature line ``— <key name> <base64(key id || signature)>``,
where the key id is the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key). This is
the format transparency-log witnesses (C2SP tlog-witness, Go's ``golang.org/x/mod/sumdb/note``)
consume, so an exported head can be cosigned and checked by tools that know nothing of this node.
The key name is the log's origin.

Keys are read from PEM files (PKCS#8 private, SubjectPublicKeyInfo public) with ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import format_time

_ED25519 = b"\x01"  # signed-note signature type of Ed25519 (c2sp.org/signed-note, "Signature types")
_DASH = "\u2014"


class SigningKeyError(ValueError):
    """A key file is missing, unreadable or not an Ed25519 key."""


class HeadError(ValueError):
    """A checkpoint is malformed, or its signature does not verify with the trusted key."""


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: Ed25519PublicKey, signature_type: bytes = _ED25519) -> bytes:
    """SHA-256(name || "\\n" || signature type || public key)[:4] (c2sp.org/signed-note, "Signatures")."""
    return hashlib.sha256(name.encode() + b"\n" + signature_type + _raw_public(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey, signature_type: bytes = _ED25519) -> str:
    """The public key as a signed-note verifier string: ``name+hex(key id)+base64(type || key)``."""
    return (f"{name}+{key_id(name, public, signature_type).hex()}+"
            f"{base64.b64encode(signature_type + _raw_public(public)).decode()}")


def parse_verifier_key(vkey: str, signature_type: bytes = _ED25519) -> tuple[str, Ed25519PublicKey]:
    """(name, public key) of a signed-note verifier key of ``signature_type``; its key id is checked."""
    parts = vkey.strip().split("+", 2)  # names hold no '+'; base64 may
    if len(parts) != 3 or not parts[0]:
        raise SigningKeyError("a verifier key is name+hex(key id)+base64(type || key)")
    name, hash_hex, blob = parts
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        raise SigningKeyError(f"verifier key of {name!r}: the key is not base64") from None
    if len(raw) != 33 or raw[:1] != signature_type:
        raise SigningKeyError(f"verifier key of {name!r}: not an Ed25519 key of signature type 0x{signature_type.hex()}")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, public, signature_type).hex() != hash_hex.lower():
        raise SigningKeyError(f"verifier key of {name!r}: the key id {hash_hex} does not match the key")
    return name, public


def load_private_key(path: Path, *, generate: bool = False) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``; if it is missing and ``generate`` is true, a new
    key is written there first (mode 0600, never overwriting a file that appeared meanwhile)."""
    path = Path(path)
    if not path.exists() and generate:
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"signing key file {path} does not exist (set the generate option to create one)") from None
    except OSError as exc:
        raise SigningKeyError(f"signing key file {path} is unreadable: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key file {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key file {path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (a private key file is accepted too)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"key file {path} is unreadable: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"key file {path} holds no PEM Ed25519 key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"key file {path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    timestamp: str | None = None

    def body(self) -> str:
        text = f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
        if self.timestamp is not None:
            text += f"timestamp {self.timestamp}\n"
        return text

    def sign(self, private: Ed25519PrivateKey) -> str:
        """The signed note (body, blank line, signature line)."""
        body = self.body()
        signature = private.sign(body.encode())
        blob = base64.b64encode(key_id(self.origin, private.public_key()) + signature).decode()
        return f"{body}\n{_DASH} {self.origin} {blob}\n"


def make_checkpoint(origin: str, size: int, root: bytes, at: datetime | None = None) -> Checkpoint:
    if "\n" in origin or not origin:
        raise ValueError("the origin is one non-empty line")
    return Checkpoint(origin, size, root, format_time(at) if at is not None else None)


def signatures_by(lines: Iterable[str], name: str, wanted_id: bytes) -> Iterator[tuple[str, bytes]]:
    """(line, decoded key id || signature) of each signature line of key ``name`` with key id ``wanted_id``; other
    lines are ignored, as a signed-note verifier must ignore unknown keys (c2sp.org/signed-note)."""
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != name:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if blob[:4] == wanted_id:
            yield line, blob


def open_note(note: str, public: Ed25519PublicKey, origin: str | None = None) -> Checkpoint:
    """Parse a signed checkpoint and verify its signature with ``public``; raises HeadError."""
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise HeadError("not a signed note: no blank line before the signatures")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise HeadError("a checkpoint has at least three lines")
    name = lines[0]
    if origin is not None and name != origin:
        raise HeadError(f"checkpoint of log {name!r}, expected {origin!r}")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        raise HeadError("checkpoint size or root hash is malformed") from None
    if size < 0 or len(root) != 32 or str(size) != lines[1]:
        raise HeadError("checkpoint size or root hash is malformed")
    timestamp = None
    for extra in lines[3:]:
        if extra.startswith("timestamp "):
            timestamp = extra.removeprefix("timestamp ")
    for _, blob in signatures_by(signatures.splitlines(), name, key_id(name, public)):
        try:
            public.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise HeadError("signature does not verify with the trusted key") from None
        return Checkpoint(name, size, root, timestamp)
    raise HeadError("no signature by the trusted key")
