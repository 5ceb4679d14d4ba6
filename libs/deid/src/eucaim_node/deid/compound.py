"""IOD-aware resolution of the compound action codes of PS3.15 Table E.1-1a.

``X/Z``: X unless Z is required to keep the IOD conformant (Type 2).
``X/D``: X unless D is required (Type 1).  ``Z/D``: Z unless D is required.
``X/Z/D``: X unless Z or D is required.  ``X/Z/U*``: X unless Z or replacement
of contained instance UIDs is required.

We do not ship the full module tables of PS3.3. Instead :data:`REQUIRED` lists,
for each attribute that carries a compound code, the IODs (by SOP Class UID) in
which it is Type 1 or Type 2 (PS3.3, the module named in the comment). For an
SOP class in :data:`CURATED_SOP_CLASSES` an attribute not listed there is Type 3
(or absent) and is removed. For any other SOP class we take the choice that
conforms whatever the attribute's type is and leaks nothing: ``X/Z`` → Z,
``X/D``/``X/Z/D``/``Z/D`` → D. ``X/Z/U*`` always resolves to U: the references
are kept with every UID inside replaced, which preserves referential integrity
(a derived image or SEG still points at its de-identified source).
"""

from __future__ import annotations

from pydicom.uid import UID

# SOP Class UIDs grouped by the modules that matter for the compound rows.
CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_CT = "1.2.840.10008.5.1.4.1.1.2.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
MR_SPECTROSCOPY = "1.2.840.10008.5.1.4.1.1.4.2"
ENHANCED_MR_COLOR = "1.2.840.10008.5.1.4.1.1.4.3"
LEGACY_MR = "1.2.840.10008.5.1.4.1.1.4.4"
CR = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
IO_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"
IO_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.3.1"
NM = "1.2.840.10008.5.1.4.1.1.20"
PET = "1.2.840.10008.5.1.4.1.1.128"
ENHANCED_PET = "1.2.840.10008.5.1.4.1.1.130"
LEGACY_PET = "1.2.840.10008.5.1.4.1.1.128.1"
XA = "1.2.840.10008.5.1.4.1.1.12.1"
ENHANCED_XA = "1.2.840.10008.5.1.4.1.1.12.1.1"
RF = "1.2.840.10008.5.1.4.1.1.12.2"
ENHANCED_XRF = "1.2.840.10008.5.1.4.1.1.12.2.1"
US = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
ENHANCED_US = "1.2.840.10008.5.1.4.1.1.6.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"
RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN = "1.2.840.10008.5.1.4.1.1.481.8"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"

#: IODs whose equipment is described by the Enhanced General Equipment module
#: (PS3.3 C.7.5.2: Manufacturer, Model, DeviceSerialNumber, SoftwareVersions Type 1).
ENHANCED_EQUIPMENT = frozenset(
    {
        ENHANCED_CT, LEGACY_CT, ENHANCED_MR, MR_SPECTROSCOPY, ENHANCED_MR_COLOR, LEGACY_MR,
        ENHANCED_PET, LEGACY_PET, ENHANCED_XA, ENHANCED_XRF, ENHANCED_US, SEG, PARAMETRIC_MAP,
    }
)
#: IODs using the Multi-frame Functional Groups / enhanced image modules where
#: ContentDate/ContentTime and AcquisitionDateTime are Type 1 (PS3.3 C.7.6.16, C.8.13.1).
ENHANCED_IMAGE = ENHANCED_EQUIPMENT - {MR_SPECTROSCOPY}
#: SR Document General module (PS3.3 C.17.2): ContentDate/ContentTime Type 1.
SR_DOCUMENTS = frozenset(
    {BASIC_TEXT_SR, ENHANCED_SR, COMPREHENSIVE_SR, COMPREHENSIVE_3D_SR, KEY_OBJECT_SELECTION}
)
#: IODs with the Acquisition Context module (PS3.3 C.7.6.14, Type 2 sequence).
ACQUISITION_CONTEXT = frozenset(
    {
        DX_PRESENTATION, DX_PROCESSING, MG_PRESENTATION, MG_PROCESSING, IO_PRESENTATION,
        IO_PROCESSING, ENHANCED_CT, LEGACY_CT, ENHANCED_MR, ENHANCED_MR_COLOR, LEGACY_MR,
        ENHANCED_PET, LEGACY_PET, ENHANCED_XA, ENHANCED_XRF, ENHANCED_US,
    }
)
RT_PLANS = frozenset({RT_PLAN, RT_ION_PLAN})
#: IODs with the RT Series module (PS3.3 C.8.8.1): Operators' Name Type 2.
RT_SERIES = frozenset({RT_IMAGE, RT_DOSE, RT_STRUCT, RT_PLAN, RT_ION_PLAN})

#: Classic image IODs, SR and RT IODs for which the table below is complete.
CURATED_SOP_CLASSES = (
    frozenset({CT, MR, CR, NM, PET, XA, RF, US, US_MULTIFRAME, SC, RT_IMAGE, RT_DOSE, RT_STRUCT, GSPS})
    | ENHANCED_EQUIPMENT
    | SR_DOCUMENTS
    | ACQUISITION_CONTEXT
    | RT_PLANS
)

# tag -> ((sop classes, required type), ...)
REQUIRED: dict[int, tuple[tuple[frozenset[str], int], ...]] = {
    0x00080023: ((ENHANCED_IMAGE | SR_DOCUMENTS, 1),),  # Content Date
    0x00080033: ((ENHANCED_IMAGE | SR_DOCUMENTS, 1),),  # Content Time
    0x0008002A: ((ENHANCED_IMAGE, 1),),  # Acquisition DateTime (C.7.6.16 / C.8.13.1)
    0x00181000: ((ENHANCED_EQUIPMENT, 1),),  # Device Serial Number (C.7.5.2)
    0x00400555: ((ACQUISITION_CONTEXT, 2),),  # Acquisition Context Sequence (C.7.6.14)
    0x300A00B2: ((RT_PLANS, 2),),  # Treatment Machine Name (RT Beams, C.8.8.14)
    0x00180010: ((frozenset({CT, MR, CR, NM, PET, XA, RF, US, US_MULTIFRAME}), 2),),  # Contrast/Bolus Agent (C.7.6.4)
    0x00700084: ((frozenset({GSPS, SEG}), 2),),  # Content Creator's Name (Content Identification macro)
    0x00100020: ((CURATED_SOP_CLASSES, 2),),  # Patient ID (Patient module C.7.1.1)
    0x00081070: ((RT_SERIES, 2),),  # Operators' Name (RT Series module C.8.8.1)
    0x00081111: ((SR_DOCUMENTS, 2),),  # Referenced Performed Procedure Step Sequence (SR Document Series C.17.1)
    0x00080021: ((frozenset({PET}), 1),),  # Series Date (PET Series module C.8.9.1)
    0x00080031: ((frozenset({PET}), 1),),  # Series Time (PET Series module C.8.9.1)
    0x00321060: ((SR_DOCUMENTS, 2),),  # Requested Procedure Description (Referenced Request macro, C.17.2)
    0x300A0006: ((RT_PLANS, 2),),  # RT Plan Date (RT General Plan module C.8.8.9)
    0x300A0007: ((RT_PLANS, 2),),  # RT Plan Time (RT General Plan module C.8.8.9)
    0x300E0008: ((RT_SERIES, 2),),  # Reviewer Name (Approval module C.8.8.16, Type 2C)
}


def required_type(tag: int, sop_class_uid: str | None) -> int | None:
    """Type (1 or 2) of `tag` in the IOD of `sop_class_uid`; 3 if curated and not required;
    None if the SOP class is not curated here."""
    sop_class = str(UID(sop_class_uid)) if sop_class_uid else ""
    for classes, attr_type in REQUIRED.get(tag, ()):
        if sop_class in classes:
            return attr_type
    return 3 if sop_class in CURATED_SOP_CLASSES else None


def resolve_compound(action: str, tag: int, sop_class_uid: str | None) -> str:
    """Reduce a compound action code to one of D, Z, X, U for this IOD (module docstring)."""
    if "/" not in action:
        return action
    if action == "X/Z/U*":
        return "U"
    choices = action.split("/")
    attr_type = required_type(tag, sop_class_uid)
    if attr_type is None:  # unknown IOD: the choice that conforms to any type
        return "D" if "D" in choices else "Z"
    if attr_type == 1 and "D" in choices:
        return "D"
    if attr_type <= 2 and "Z" in choices:
        return "Z"
    if attr_type <= 2:  # X/D where the attribute is Type 2: a dummy still conforms
        return "D"
    return choices[0]  # Type 3: the least-revealing choice, X (or Z for Z/D)
