"""Instances that must not be released by header de-identification alone.

PS3.15 E.3.1 (Clean Pixel Data) and E.3.2 (Clean Recognizable Visual Features):
identifying text burned into pixels, and images of recognisable features, are
not removed by the attribute rules. Such instances are quarantined unless a
configured :class:`~eucaim_node.deid.options.AllowRule` matches.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import UID, UID_dictionary

from .options import AllowRule, Profile
from .result import QuarantineReason
from .values import first_text

#: Modalities in which text in pixels is common (PS3.3 C.7.3.1.1.1 defined terms).
HIGH_RISK_MODALITIES = frozenset({"US", "IVUS", "XC", "GM", "ES", "OP", "SM", "DOC", "OT"})

#: SOP classes at high risk: secondary capture, photographs and video, encapsulated documents.
HIGH_RISK_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture family (incl. .7.1-.7.4)
    "1.2.840.10008.5.1.4.1.1.77.1",  # VL images and video (endoscopy, photographs, microscopy)
    "1.2.840.10008.5.1.4.1.1.104",  # Encapsulated PDF, CDA, STL, OBJ, MTL
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame
)


def is_known_sop_class(uid: str) -> bool:
    """True if `uid` is a storage/SOP class defined in the DICOM standard (PS3.6 Table A-1)."""
    entry = UID_dictionary.get(str(uid))
    return entry is not None and entry[1] == "SOP Class"


def is_high_risk_sop_class(uid: str) -> bool:
    """True for SC, VL/photo/video, encapsulated documents and ultrasound SOP classes."""
    text = str(uid)
    return any(text == p or text.startswith(p + ".") for p in HIGH_RISK_SOP_PREFIXES)


_TAGS = {
    "SOPClassUID": 0x00080016,
    "Modality": 0x00080060,
    "Manufacturer": 0x00080070,
    "BurnedInAnnotation": 0x00280301,
    "RecognizableVisualFeatures": 0x00280302,
}


def _text(ds: Dataset, keyword: str) -> str:
    """First value, upper case, read without converting the element."""
    return first_text(ds, _TAGS[keyword]).upper()


def _matches(rule: AllowRule, sop_class: str, modality: str, manufacturer: str) -> bool:
    if rule.sop_class_uid is not None and rule.sop_class_uid != sop_class:
        return False
    if rule.modality is not None and rule.modality.upper() != modality:
        return False
    if rule.manufacturer is not None and rule.manufacturer.upper() not in manufacturer:
        return False
    return True


def assess_sop_class(ds: Dataset) -> QuarantineReason | None:
    """Quarantine reason if the SOP Class UID is missing or not a standard SOP class."""
    sop_class = _text(ds, "SOPClassUID")
    if not sop_class:
        return QuarantineReason(
            code="unknown-sop-class",
            message="SOP Class UID is missing",
            tag="(0008,0016)",
            keyword="SOPClassUID",
            rule="sop-class-known",
        )
    if not is_known_sop_class(sop_class):
        return QuarantineReason(
            code="unknown-sop-class",
            message="SOP Class UID is not a standard SOP class (PS3.6 Table A-1); no IOD rules apply",
            tag="(0008,0016)",
            keyword="SOPClassUID",
            rule="sop-class-known",
        )
    return None


def assess_pixel_risk(ds: Dataset, profile: Profile) -> list[QuarantineReason]:
    """Reasons to quarantine for burned-in annotation or a high-risk SOP class/modality."""
    sop_class = _text(ds, "SOPClassUID")
    modality = _text(ds, "Modality")
    manufacturer = _text(ds, "Manufacturer")
    rules = [r for r in profile.allow if _matches(r, sop_class, modality, manufacturer)]
    reasons: list[QuarantineReason] = []
    if _text(ds, "BurnedInAnnotation") == "YES" and not any(r.burned_in_annotation_yes for r in rules):
        reasons.append(
            QuarantineReason(
                code="burned-in-annotation",
                message="BurnedInAnnotation is YES and no allow rule covers this instance (PS3.15 E.3.1)",
                tag="(0028,0301)",
                keyword="BurnedInAnnotation",
                rule="burned-in-annotation",
            )
        )
    if _text(ds, "RecognizableVisualFeatures") == "YES" and not rules:
        reasons.append(
            QuarantineReason(
                code="high-risk-modality",
                message="RecognizableVisualFeatures is YES (PS3.15 E.3.2)",
                tag="(0028,0302)",
                keyword="RecognizableVisualFeatures",
                rule="recognizable-visual-features",
            )
        )
    if profile.quarantine_high_risk and not rules:
        if is_high_risk_sop_class(sop_class):
            reasons.append(
                QuarantineReason(
                    code="high-risk-modality",
                    message=f"SOP class {UID(sop_class).name} often carries burned-in text or faces",
                    tag="(0008,0016)",
                    keyword="SOPClassUID",
                    rule="high-risk-sop-class",
                )
            )
        elif modality in HIGH_RISK_MODALITIES:
            reasons.append(
                QuarantineReason(
                    code="high-risk-modality",
                    message=f"modality {modality} often carries burned-in text",
                    tag="(0008,0060)",
                    keyword="Modality",
                    rule="high-risk-modality",
                )
            )
    return reasons
