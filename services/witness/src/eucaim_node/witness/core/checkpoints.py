"""The witness's decisions, pure: parse an ``add-checkpoint`` request, check it, say what to store and answer.

Everything here follows c2sp.org/tlog-witness, "add-checkpoint":

* the body is ``old <size>``, up to 63 consistency-proof lines (base64 hashes), an empty line, then
  the checkpoint (a signed note);
* unknown origin → 404; no signature by a configured log key → 403; old size > checkpoint size → 400;
  old size ≠ the size of the latest checkpoint this witness cosigned for the origin → 409 with that size
  (``text/x.tlog.size``); same size but another root → 409; a proof that does not verify → 422;
* otherwise the checkpoint becomes the latest for its origin and the answer is the cosignature line.

The witness therefore never rolls back (a smaller size is a 409) and never accepts a fork (a
different root at the same size is a 409, at a larger size the proof fails: 422).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eucaim_node.ledger.checkpoint import Checkpoint, HeadError, SigningKeyError, open_note, parse_verifier_key
from eucaim_node.ledger.cosignature import cosign, split_note
from eucaim_node.ledger.merkle import HASH_SIZE, ProofError, verify_consistency

#: tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
#: Bound on a request body: a checkpoint of a few lines, its signatures and 63 proof lines fit many times over.
MAX_BODY_BYTES = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class Refusal(Exception):
    """The witness does not cosign; ``status`` and ``body`` are the HTTP answer."""

    def __init__(self, status: int, message: str, *, body: str | None = None,
                 content_type: str = "text/plain; charset=utf-8") -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else message + "\n"
        self.content_type = content_type


@dataclass(frozen=True)
class Submission:
    old_size: int
    proof: tuple[bytes, ...]
    note: str


@dataclass(frozen=True)
class Latest:
    """What the witness holds for one origin: the latest checkpoint it cosigned."""

    origin: str
    size: int
    root: bytes
    note: str  # the checkpoint with the log's signature and this witness's cosignature


@dataclass(frozen=True)
class Accepted:
    checkpoint: Checkpoint
    cosignature: str  # the signature line(s) returned to the client
    latest: Latest


def _decimal(text: str) -> int:
    """An ASCII decimal with no leading zeroes (``0`` itself allowed), as the spec writes sizes."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ValueError(text)
    return int(text)


def parse_submission(body: bytes) -> Submission:
    """Parse an add-checkpoint body; raises Refusal(400) if it is not one."""
    if len(body) > MAX_BODY_BYTES:
        raise Refusal(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise Refusal(400, "request body has no empty line between the old size and the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise Refusal(400, "request body does not start with an 'old <size>' line")
    try:
        old_size = _decimal(lines[0].removeprefix("old "))
    except ValueError:
        raise Refusal(400, "the old size is not a decimal without leading zeroes") from None
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise Refusal(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            node = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(400, "a consistency proof line is not base64") from None
        if len(node) != HASH_SIZE:
            raise Refusal(400, f"a consistency proof line is not a {HASH_SIZE}-byte hash")
        proof.append(node)
    if not note.endswith("\n"):
        raise Refusal(400, "the checkpoint does not end with a newline")
    return Submission(old_size, tuple(proof), note)


def origin_of(note: str) -> str:
    return note.split("\n", 1)[0]


def check_submission(submission: Submission, logs: Mapping[str, Ed25519PublicKey], latest: Latest | None) -> Checkpoint:
    """The checkpoint to cosign, or Refusal with the status tlog-witness prescribes."""
    origin = origin_of(submission.note)
    public = logs.get(origin)
    if public is None:
        raise Refusal(404, f"unknown log origin {origin[:200]!r}: this witness does not witness it")
    try:
        checkpoint = open_note(submission.note, public, origin=origin)
    except HeadError as exc:
        raise Refusal(403, f"checkpoint not signed by the configured key of {origin}: {exc}") from None
    if submission.old_size > checkpoint.size:
        raise Refusal(400, f"old size {submission.old_size} is larger than the checkpoint size {checkpoint.size}")
    known = latest.size if latest is not None else 0
    if submission.old_size != known:
        raise Refusal(409, f"old size {submission.old_size} is not the witnessed size {known}",
                      body=f"{known}\n", content_type=SIZE_CONTENT_TYPE)
    if latest is None or submission.old_size == 0:
        if submission.proof:
            raise Refusal(422, "the consistency proof must be empty when the old size is 0")
        return checkpoint
    if checkpoint.size == latest.size:
        if checkpoint.root != latest.root or submission.proof:
            raise Refusal(409, f"a different tree of size {latest.size} was already witnessed (a fork)",
                          body=f"{latest.size}\n", content_type=SIZE_CONTENT_TYPE)
        return checkpoint
    try:
        verify_consistency(latest.size, checkpoint.size, latest.root, checkpoint.root, submission.proof)
    except ProofError as exc:
        raise Refusal(422, f"consistency proof from size {latest.size} to {checkpoint.size} does not verify: {exc}") from None
    return checkpoint


def accept(submission: Submission, checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey, now: int) -> Accepted:
    """Cosign ``checkpoint`` (already checked) at POSIX time ``now``."""
    body, signatures = split_note(submission.note)
    line = cosign(body, name, key, now)
    log_lines = "".join(s + "\n" for s in signatures)
    note = f"{body}\n{log_lines}{line}"
    return Accepted(checkpoint, line, Latest(checkpoint.origin, checkpoint.size, checkpoint.root, note))


def parse_logs(text: str) -> dict[str, Ed25519PublicKey]:
    """The logs file: one signed-note verifier key per line (``origin+hex(key id)+base64(0x01 || key)``);
    blank lines and ``#`` comments ignored. Raises ValueError naming the bad line."""
    logs: dict[str, Ed25519PublicKey] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            origin, public = parse_verifier_key(line)
        except SigningKeyError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        if origin in logs:
            raise ValueError(f"line {number}: log {origin} is listed twice")
        logs[origin] = public
    return logs
