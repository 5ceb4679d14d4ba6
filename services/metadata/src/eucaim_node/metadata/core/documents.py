"""Catalogue documents from de-identified DICOM attributes (pure: Orthanc JSON in, documents out).

The documents follow the EUCAIM common data model's imaging entities: a *subject* (pseudonymous
key, sex), an *image_study* (subject, collection, age at study, shifted date, coded modalities,
body parts and manufacturers, counts, contrast) and an *image_series* (modality, body part,
manufacturer, model, slice thickness, pixel spacing, instance count, contrast). Coded fields hold
the federation's tokens (``*_code`` / ``*_codes``: RadLex for modality, SNOMED CT for body part and
sex, BIRNLex for manufacturer) beside the raw value; a value with no code keeps its raw text and
gets the explicit unknown code (SNOMED CT 261665006), never dropped.

The documents are the library's typed models (``eucaim_node.catalogue.documents``): their stored field names
are the contract every reader of the catalogue relies on. The study document is keyed by the study key, series documents by their (pseudonymised)
SeriesInstanceUID: writing them again for the same study replaces them, never duplicates.
Attribute meanings follow PS3.3: Modality (0008,0060), BodyPartExamined (0018,0015),
PatientSex (0010,0040), PatientAge (0010,1010, "nnnD/W/M/Y"), SliceThickness (0018,0050),
PixelSpacing (0028,0030), ContrastBolusAgent (0018,0010), ManufacturerModelName (0008,1090).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from eucaim_node.catalogue.coding import CodingTables
from eucaim_node.catalogue.config import Condition
from eucaim_node.catalogue.documents import SeriesDocument, StudyDocument, SubjectDocument
from eucaim_node.catalogue.screening import ASSESSMENT_CODES, ScreeningContext

UNKNOWN = "UNKNOWN"
CDM_VERSION = "eucaim-cdm-imaging/1"


def age_in_years(patient_age: str | None) -> float | None:
    """Decode an Age String (PS3.5 Table 6.2-1, VR AS), e.g. ``"045Y"`` → 45.0, ``"006M"`` → 0.5."""
    if not patient_age or len(patient_age) != 4 or not patient_age[:3].isdigit():
        return None
    value, unit = int(patient_age[:3]), patient_age[3].upper()
    per_year = {"D": 365.25, "W": 52.1775, "M": 12.0, "Y": 1.0}.get(unit)
    return None if per_year is None else round(value / per_year, 2)


def _number(value: Any) -> float | None:
    try:
        return float(str(value).split("\\")[0])
    except (TypeError, ValueError):
        return None


def _numbers(value: Any) -> list[float] | None:
    if value in (None, ""):
        return None
    try:
        return [float(v) for v in str(value).split("\\")]
    except ValueError:
        return None


def _text(value: Any) -> str:
    text = str(value).strip().upper() if value not in (None, "") else ""
    return text or UNKNOWN


def series_document(series: dict[str, Any], tags: dict[str, Any], *, study_key: str, subject_key: str | None = None,
                    study_description: str | None = None, tables: CodingTables | None = None) -> SeriesDocument:
    """One image_series: ``series`` is Orthanc's /series/{id}, ``tags`` one instance's simplified tags."""
    tables = tables or CodingTables.bundled()
    main = series.get("MainDicomTags", {})
    raw_modality = main.get("Modality") or tags.get("Modality")
    raw_body_part = main.get("BodyPartExamined") or tags.get("BodyPartExamined")
    modality = tables.code("modality", raw_modality)
    body_part = tables.code("body_part", raw_body_part)
    regions = tables.regions(raw_modality, raw_body_part,
                             (study_description, main.get("SeriesDescription") or tags.get("SeriesDescription")))
    manufacturer = tables.code("manufacturer", tags.get("Manufacturer"))
    return SeriesDocument(
        key=main.get("SeriesInstanceUID") or tags.get("SeriesInstanceUID"),
        study_key=study_key,
        subject_key=subject_key,
        modality=_text(main.get("Modality") or tags.get("Modality")),
        modality_code=modality.code,
        body_part=_text(main.get("BodyPartExamined") or tags.get("BodyPartExamined")),
        body_part_code=body_part.code,
        body_region_codes=sorted(regions),  # what the search's body part finds (coding.py body_region)
        manufacturer=_text(tags.get("Manufacturer")),
        manufacturer_code=manufacturer.code,
        model=tags.get("ManufacturerModelName") or None,
        series_date=main.get("SeriesDate") or tags.get("SeriesDate") or None,  # shifted by de-identification
        slice_thickness_mm=_number(tags.get("SliceThickness")),
        pixel_spacing_mm=_numbers(tags.get("PixelSpacing")),
        contrast=bool(tags.get("ContrastBolusAgent")),
        instance_count=len(series.get("Instances", ())),
    )


def study_document(study: dict[str, Any], series_docs: list[SeriesDocument], first_tags: dict[str, Any], *,
                   study_key: str, collection_id: str, indexed_at: datetime, source_event_id: str,
                   condition: Condition | None = None, tables: CodingTables | None = None,
                   screening: ScreeningContext | None = None, assessments: Iterable[str] = ()) -> StudyDocument:
    """One image_study, with the series' coded values gathered (what the federated search queries).

    ``condition`` is the study's diagnosis (the collection's, else its cancer type's); ``screening`` its programme
    and cancer type (catalogue/screening.py); ``assessments`` the BI-RADS / PI-RADS categories of its reports."""
    tables = tables or CodingTables.bundled()
    main = study.get("MainDicomTags", {})
    patient = study.get("PatientMainDicomTags", {})
    sex = tables.code("sex", first_tags.get("PatientSex"))
    return StudyDocument(
        key=study_key,
        cdm=CDM_VERSION,
        subject_key=patient.get("PatientID") or first_tags.get("PatientID"),
        collection_id=collection_id,
        condition_code=condition.code if condition else tables.unknown.code,
        condition_label=condition.label if condition else UNKNOWN,
        study_date=main.get("StudyDate") or None,  # already shifted by de-identification
        sex=sex.value if sex.known else UNKNOWN,
        sex_code=sex.code,
        age_years=age_in_years(first_tags.get("PatientAge")),
        modalities=sorted({s.modality for s in series_docs}),
        modality_codes=sorted({s.modality_code for s in series_docs}),
        body_parts=sorted({s.body_part for s in series_docs}),
        body_part_codes=sorted({s.body_part_code for s in series_docs}),
        body_region_codes=sorted({c for s in series_docs for c in s.body_region_codes}),
        manufacturers=sorted({s.manufacturer for s in series_docs}),
        manufacturer_codes=sorted({s.manufacturer_code for s in series_docs}),
        contrast=any(s.contrast for s in series_docs),
        programme=screening.programme if screening else "unknown",
        programme_source=screening.programme_source if screening else "default",
        cancer_type=screening.cancer_type if screening else "other",
        cancer_type_source=screening.cancer_type_source if screening else "default",
        assessments=sorted(set(assessments)),
        assessment_codes=sorted({ASSESSMENT_CODES[a] for a in assessments}),
        series_count=len(series_docs),
        instance_count=sum(s.instance_count for s in series_docs),
        indexed_at=indexed_at,
        source_event_id=source_event_id,
    )


def subject_document(subject_key: str, studies: list[StudyDocument]) -> SubjectDocument:
    """One CDM subject, from all its catalogued studies (recomputed, never incremented)."""
    ages = [s.age_years for s in studies if s.age_years is not None]
    return SubjectDocument(
        key=subject_key,
        sex_codes=sorted({s.sex_code for s in studies if s.sex_code}),
        collection_ids=sorted({s.collection_id for s in studies}),
        study_keys=sorted(s.key for s in studies),
        study_count=len(studies),
        age_at_first_study_years=min(ages) if ages else None,
    )
