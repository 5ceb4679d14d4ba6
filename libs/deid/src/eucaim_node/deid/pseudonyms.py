"""Keyed, deterministic pseudonyms (PS3.15 E.3.9 *Retain UIDs* and action ``U``).

Every pseudonym is an HMAC-SHA256 of the original value under the node key, with
a distinct *purpose* label per kind of value (domain separation), so that the same
input and key always give the same output and another key gives an unrelated one.
"""

from __future__ import annotations

import hashlib
import hmac

UID_ROOT = "2.25."
_UID_BITS = 128  # PS3.5 B.2: a 2.25 UID holds a 128-bit integer (<= 39 digits)
PATIENT_ID_HEX_CHARS = 20
_MAX_DATE_SHIFT_DAYS = 3652


def _hmac(key: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of `value` under `key`, domain-separated by `purpose`."""
    message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).digest()


def keyed_hash(value: str, key: bytes, purpose: str) -> str:
    """Return a hex keyed hash of `value` for `purpose` (logs, events, audit).

    Different purposes give unrelated hashes of the same value, so a hash
    published in one context cannot be matched against another.
    """
    if not purpose:
        raise ValueError("purpose must be a non-empty label")
    return _hmac(key, "eucaim-node/" + purpose, value).hex()


def normalise_uid(uid: str) -> str:
    """Strip the padding and whitespace a UI value may carry (PS3.5 6.2)."""
    return str(uid).strip().rstrip("\x00").strip()


def pseudonymise_uid(uid: str, key: bytes) -> str:
    """Return the ``2.25.`` UID that replaces `uid` (PS3.15 E.1, action ``U``).

    The decimal of the first 128 bits of HMAC-SHA256(key, uid) under the
    ``2.25`` root (PS3.5 B.2), at most 44 characters: valid, deterministic,
    and consistent wherever the same original UID is referenced.
    """
    digest = _hmac(key, "eucaim-node/uid", normalise_uid(uid))
    number = int.from_bytes(digest[: _UID_BITS // 8], "big")
    return f"{UID_ROOT}{number}"


def pseudonymise_patient_id(patient_id: str, key: bytes, site_prefix: str) -> str:
    """Return ``<site_prefix>-<20 hex chars of a keyed HMAC>`` for `patient_id`.

    The same patient and key give the same pseudonym in every study and every
    run; the result fits PatientID's LO VR (64 characters) for any prefix of up
    to 43 characters.
    """
    if not site_prefix or len(site_prefix) > 43 or "\\" in site_prefix:
        raise ValueError("site_prefix must be 1-43 characters without backslash")
    digest = _hmac(key, "eucaim-node/patient-id", str(patient_id).strip())
    return f"{site_prefix}-{digest.hex()[:PATIENT_ID_HEX_CHARS]}"


def date_shift_days(patient_identity: str, key: bytes) -> int:
    """Return the per-patient date offset in days: never zero, in [-3652, -1].

    Used by the *Retain Longitudinal Temporal Information with Modified Dates*
    option (PS3.15 E.3.6): every date of one patient moves by the same offset,
    so intervals between that patient's studies are preserved.
    """
    digest = _hmac(key, "eucaim-node/date-shift", patient_identity)
    return -(1 + int.from_bytes(digest[:8], "big") % _MAX_DATE_SHIFT_DAYS)
