"""eucaim_node.deid: the DICOM PS3.15 Annex E de-identification engine.

A pure library: bytes or datasets in, results out. No network, no database,
no Orthanc. See ``docs/deid.md``.
"""

from .engine import Deidentifier
from .keys import MIN_KEY_BYTES, KeyFileError, load_key
from .options import (
    BASIC,
    EUCAIM_DEFAULT,
    PROFILES,
    AllowRule,
    DeidOptions,
    Option,
    Profile,
    SafePrivate,
    load_profile,
    profile_named,
)
from .pseudonyms import keyed_hash, pseudonymise_patient_id, pseudonymise_uid
from .result import DeidResult, QuarantineReason

__all__ = [
    "BASIC",
    "EUCAIM_DEFAULT",
    "MIN_KEY_BYTES",
    "PROFILES",
    "AllowRule",
    "DeidOptions",
    "DeidResult",
    "Deidentifier",
    "KeyFileError",
    "Option",
    "Profile",
    "QuarantineReason",
    "SafePrivate",
    "keyed_hash",
    "load_key",
    "load_profile",
    "profile_named",
    "pseudonymise_patient_id",
    "pseudonymise_uid",
]
