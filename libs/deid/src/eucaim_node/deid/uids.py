"""Which UI values name an instance (and are pseudonymised) and which name a
class, syntax or scheme (and are kept) — PS3.15 E.1 action ``U``, PS3.5 9."""

from __future__ import annotations

import re

from pydicom.dataset import Dataset

from .result import QuarantineReason
from .values import iter_elements, tag_text, text_values

DICOM_UID_ROOT = "1.2.840.10008."
MAX_UID_LENGTH = 64
# One component: "0", or digits not starting with 0. [0-9], not \d (any Unicode digit); fullmatch,
# not pydicom's RE_VALID_UID with re.match, whose "$" also accepts a trailing newline.
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")

#: UI attributes whose values name a class, syntax or scheme, never an instance:
#: kept even when not under the DICOM root (private SOP classes, HL7 coding schemes).
DEFINITIONAL_UID_TAGS = frozenset(
    {
        0x00000002,  # Affected SOP Class UID
        0x00000003,  # Requested SOP Class UID
        0x00020002,  # Media Storage SOP Class UID
        0x00020010,  # Transfer Syntax UID
        0x00020012,  # Implementation Class UID (rewritten with ours)
        0x00041510,  # Referenced SOP Class UID in File
        0x00041512,  # Referenced Transfer Syntax UID in File
        0x0004151A,  # Referenced Related General SOP Class UID in File
        0x00080016,  # SOP Class UID
        0x0008001A,  # Related General SOP Class UID
        0x0008001B,  # Original Specialized SOP Class UID
        0x0008010C,  # Coding Scheme UID
        0x0008010D,  # Context Group Extension Creator UID
        0x00080118,  # Mapping Resource UID
        0x00081150,  # Referenced SOP Class UID
        0x0040DB0C,  # Template Extension Organization UID
        0x0040DB0D,  # Template Extension Creator UID
    }
)


def is_dicom_defined(uid: str) -> bool:
    """True for UIDs under the DICOM root 1.2.840.10008 (PS3.6 Annex A)."""
    return uid.startswith(DICOM_UID_ROOT)


def uid_defect(uid: str) -> str | None:
    """What makes `uid` (padding already removed) not a valid UID, or None if it is one.

    PS3.5 §9.1: components of the digits 0-9 separated by ".", no empty
    component, no leading zero in a component of more than one digit, at most
    64 characters in total. The answer describes the defect, never the value, so
    it can go into a quarantine reason.
    """
    if not uid:
        return "empty"
    if len(uid) > MAX_UID_LENGTH:
        return f"longer than {MAX_UID_LENGTH} characters"
    if _UID.fullmatch(uid):
        return None
    components = uid.split(".")
    if any(not c.isascii() or not c.isdigit() for c in components if c):
        return "characters other than the digits 0-9 and '.'"
    if any(not c for c in components):
        return "an empty component"
    return "a component with a leading zero"


def is_valid_uid(uid: str) -> bool:
    """True if `uid` is a valid UID (PS3.5 §9.1, see :func:`uid_defect`)."""
    return uid_defect(uid) is None


def invalid_uid_reasons(ds: Dataset) -> list[QuarantineReason]:
    """A reason for the first UI value of `ds` (file meta first, then every depth) that is not a
    valid UID (PS3.5 §9.1): the engine never releases one. Pseudonyms are valid by construction,
    so only kept values (under the DICOM root, class/scheme UIDs, Retain UIDs) can fail."""
    meta = getattr(ds, "file_meta", None)
    walks = [iter_elements(meta, "", ["iso8859"])] if meta is not None else []
    for walk in [*walks, iter_elements(ds)]:
        for path, tag, vr, elem, encodings in walk:
            if vr != "UI":
                continue
            for value in text_values(elem, encodings):
                defect = uid_defect(value.strip(" \x00"))
                if defect:
                    return [invalid_uid_reason(tag, path, defect)]
    return []


def invalid_uid_reason(tag: int, keyword: str, defect: str) -> QuarantineReason:
    """``invalid-uid``: a UID that would be kept (and may name an output path) is not valid."""
    return QuarantineReason(
        code="invalid-uid",
        message=f"kept UID is not valid (PS3.5 9.1): {defect}; value withheld",
        tag=tag_text(tag),
        keyword=keyword,
        rule="uid-syntax",
    )
