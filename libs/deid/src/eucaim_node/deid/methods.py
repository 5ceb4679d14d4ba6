"""Recording what was done: PatientIdentityRemoved, DeidentificationMethod and
DeidentificationMethodCodeSequence with CID 7050 codes (PS3.15 E.1.1, PS3.16 CID 7050)."""

from __future__ import annotations

from functools import lru_cache

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from .options import Option, Profile

#: PS3.16 CID 7050 "De-identification Method" (scheme DCM).
CID_7050: dict[str, tuple[str, str]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_pixel_data": ("113101", "Clean Pixel Data Option"),
    "clean_recognizable_visual_features": ("113102", "Clean Recognizable Visual Features Option"),
    Option.CLEAN_GRAPHICS: ("113103", "Clean Graphics Option"),
    Option.CLEAN_STRUCTURED_CONTENT: ("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONGITUDINAL_FULL_DATES: (
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    ),
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS: ("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("113112", "Retain Institution Identity Option"),
}

_ORDER = ["basic", *Option]


def method_keys(profile: Profile) -> list[str]:
    """CID 7050 keys for the profile, Basic first, then the options in table order."""
    return [k for k in _ORDER if k == "basic" or k in profile.options]


def deidentification_method(profile: Profile, edition: str) -> list[str]:
    """DeidentificationMethod (0012,0063) values: one LO (<= 64 chars) per method."""
    values = [f"PS3.15 {edition} Basic Profile; eucaim-node deid"]
    values += [CID_7050[k][1][:64] for k in method_keys(profile) if k != "basic"]
    return values


def method_code_sequence(profile: Profile) -> Sequence:
    """DeidentificationMethodCodeSequence (0012,0064) items, CID 7050."""
    items = []
    for key in method_keys(profile):
        code, meaning = CID_7050[key]
        item = Dataset()
        item.add_new(0x00080100, "SH", code)  # Code Value
        item.add_new(0x00080102, "SH", "DCM")  # Coding Scheme Designator
        item.add_new(0x00080104, "LO", meaning)  # Code Meaning
        items.append(item)
    return Sequence(items)


def longitudinal_temporal_information(profile: Profile) -> str:
    """LongitudinalTemporalInformationModified (0028,0303) for the profile (PS3.15 E.3.6)."""
    if profile.has(Option.RETAIN_LONGITUDINAL_FULL_DATES):
        return "UNMODIFIED"
    if profile.has(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES):
        return "MODIFIED"
    return "REMOVED"


def method_elements(profile: Profile, edition: str) -> Dataset:
    """PatientIdentityRemoved, the method attributes and LongitudinalTemporalInformationModified."""
    ds = Dataset()
    ds.add_new(0x00120062, "CS", "YES")  # Patient Identity Removed
    ds.add_new(0x00120063, "LO", deidentification_method(profile, edition))  # De-identification Method
    ds.add_new(0x00120064, "SQ", method_code_sequence(profile))  # ... Code Sequence
    ds.add_new(0x00280303, "CS", longitudinal_temporal_information(profile))
    return ds


@lru_cache(maxsize=64)
def _encoded_method_elements(
    profile: Profile, edition: str, implicit_vr: bool, little_endian: bool
) -> tuple[RawDataElement, ...]:
    """:func:`method_elements` encoded once per profile and transfer-syntax encoding."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit_vr, little_endian
    write_dataset(buffer, method_elements(profile, edition))
    buffer.seek(0)
    decoded = read_dataset(buffer, implicit_vr, little_endian)
    return tuple(decoded.get_item(tag) for tag in decoded.keys())


def record_methods(ds: Dataset, profile: Profile, edition: str) -> None:
    """Add the method attributes to `ds` (pre-encoded when `ds` came from bytes)."""
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        for elem in method_elements(profile, edition):
            ds[elem.tag] = elem
        return
    for raw in _encoded_method_elements(profile, edition, implicit, little):
        ds[raw.tag] = raw
