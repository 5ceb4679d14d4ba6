"""Catalogue documents from de-identified DICOM attributes (pure: Orthanc JSON in, documents out).

The study document is keyed by the study key, series documents by their (pseudonymised)
SeriesInstanceUID: writing them again for the same study replaces them, never duplicates.
Attribute meanings follow PS3.3: Modality (0008,0060), BodyPartExamined (0018,0015),
PatientSex (0010,0040), PatientAge (0010,1010, "nnnD/W/M/Y"), SliceThickness (0018,0050),
PixelSpacing (0028,0030), ContrastBolusAgent (0018,0010).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

UNKNOWN = "UNKNOWN"


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


def series_document(series: dict[str, Any], tags: dict[str, Any], *, study_key: str) -> dict[str, Any]:
    """One series: ``series`` is Orthanc's /series/{id}, ``tags`` one instance's simplified tags."""
    main = series.get("MainDicomTags", {})
    return {
        "_id": main.get("SeriesInstanceUID") or tags.get("SeriesInstanceUID"),
        "study_key": study_key,
        "modality": _text(main.get("Modality") or tags.get("Modality")),
        "body_part": _text(main.get("BodyPartExamined") or tags.get("BodyPartExamined")),
        "manufacturer": _text(tags.get("Manufacturer")),
        "model": tags.get("ManufacturerModelName") or None,
        "slice_thickness_mm": _number(tags.get("SliceThickness")),
        "pixel_spacing_mm": _numbers(tags.get("PixelSpacing")),
        "contrast": bool(tags.get("ContrastBolusAgent")),
        "instance_count": len(series.get("Instances", ())),
    }


def study_document(study: dict[str, Any], series_docs: list[dict[str, Any]], first_tags: dict[str, Any], *,
                   study_key: str, collection_id: str, indexed_at: datetime, source_event_id: str) -> dict[str, Any]:
    main = study.get("MainDicomTags", {})
    patient = study.get("PatientMainDicomTags", {})
    return {
        "_id": study_key,
        "subject_key": patient.get("PatientID") or first_tags.get("PatientID"),
        "collection_id": collection_id,
        "study_date": main.get("StudyDate") or None,  # already shifted by de-identification
        "sex": _text(first_tags.get("PatientSex")),
        "age_years": age_in_years(first_tags.get("PatientAge")),
        "modalities": sorted({s["modality"] for s in series_docs}),
        "body_parts": sorted({s["body_part"] for s in series_docs}),
        "manufacturers": sorted({s["manufacturer"] for s in series_docs}),
        "series_count": len(series_docs),
        "instance_count": sum(s["instance_count"] for s in series_docs),
        "indexed_at": indexed_at,
        "source_event_id": source_event_id,
    }
