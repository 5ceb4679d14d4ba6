"""Which UI values name an instance (and are pseudonymised) and which name a
class, syntax or scheme (and are kept) — PS3.15 E.1 action ``U``, PS3.5 9."""

from __future__ import annotations

DICOM_UID_ROOT = "1.2.840.10008."

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
