from datetime import UTC, datetime

import pytest

from eucaim_node.catalogue.config import Condition
from eucaim_node.catalogue.documents import SeriesDocument, StudyDocument
from eucaim_node.metadata.core.documents import UNKNOWN, age_in_years, series_document, study_document, subject_document

UNKNOWN_CODE = "SNOMEDCT261665006"


@pytest.mark.parametrize(("value", "years"), [("045Y", 45.0), ("006M", 0.5), ("014D", 0.04), ("052W", 1.0),
                                               (None, None), ("", None), ("45Y", None), ("045X", None)])
def test_age_string_decoding(value, years):
    assert age_in_years(value) == years


def test_series_and_study_documents_are_cdm_aligned_and_coded():
    series = {"MainDicomTags": {"SeriesInstanceUID": "2.25.7", "Modality": "CT", "BodyPartExamined": "chest",
                                "SeriesDate": "20200101"},
              "Instances": ["a", "b", "c"]}
    tags = {"Manufacturer": "SIEMENS Healthineers", "ManufacturerModelName": "SOMATOM", "SliceThickness": "1.25",
            "PixelSpacing": "0.7\\0.7", "PatientSex": "F", "PatientAge": "061Y", "ContrastBolusAgent": "IOMERON"}
    s = series_document(series, tags, study_key="2.25.1", subject_key="EUCAIM-LOCAL-x")
    assert s.to_document() == {"_id": "2.25.7", "study_key": "2.25.1", "subject_key": "EUCAIM-LOCAL-x",
                 "modality": "CT", "modality_code": "RID10321", "body_part": "CHEST", "body_part_code": "SNOMEDCT43799004",
                 "body_region_codes": ["SNOMEDCT39607008", "SNOMEDCT43799004"],
                 "manufacturer": "SIEMENS HEALTHINEERS", "manufacturer_code": "birnlex_3066", "model": "SOMATOM",
                 "series_date": "20200101", "slice_thickness_mm": 1.25, "pixel_spacing_mm": [0.7, 0.7],
                 "contrast": True, "instance_count": 3}
    second = series_document({"MainDicomTags": {"SeriesInstanceUID": "2.25.8", "Modality": "SEG"}, "Instances": ["d"]},
                             {}, study_key="2.25.1").to_document()
    # No code: kept as an explicit unknown, raw value retained, never dropped.
    assert (second["modality"], second["modality_code"]) == ("SEG", UNKNOWN_CODE)
    assert (second["body_part"], second["body_part_code"]) == (UNKNOWN, UNKNOWN_CODE)
    assert (second["manufacturer"], second["manufacturer_code"]) == (UNKNOWN, UNKNOWN_CODE)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    second = SeriesDocument.from_document(second)
    study = study_document({"MainDicomTags": {"StudyDate": "20240101"}, "PatientMainDicomTags": {"PatientID": "EUCAIM-LOCAL-x"}},
                           [s, second], tags, study_key="2.25.1", collection_id="lung", indexed_at=at, source_event_id="e",
                           condition=Condition(code="SNOMEDCT363358000", label="Lung cancer")).to_document()
    assert study["subject_key"] == "EUCAIM-LOCAL-x" and study["collection_id"] == "lung"
    assert (study["series_count"], study["instance_count"]) == (2, 4)
    assert study["body_parts"] == ["CHEST", UNKNOWN] and study["modalities"] == ["CT", "SEG"]
    assert study["modality_codes"] == ["RID10321", UNKNOWN_CODE]
    assert study["body_part_codes"] == [UNKNOWN_CODE, "SNOMEDCT43799004"]
    assert study["body_region_codes"] == [UNKNOWN_CODE, "SNOMEDCT39607008", "SNOMEDCT43799004"]
    assert study["manufacturer_codes"] == [UNKNOWN_CODE, "birnlex_3066"]
    assert (study["sex"], study["sex_code"], study["age_years"]) == ("F", "SNOMEDCT248152002", 61.0)
    assert (study["condition_code"], study["contrast"]) == ("SNOMEDCT363358000", True)


def test_unknown_sex_is_coded_unknown():
    study = study_document({}, [], {"PatientSex": "X"}, study_key="2.25.1", collection_id="default",
                           indexed_at=datetime(2026, 1, 1, tzinfo=UTC), source_event_id="e").to_document()
    assert (study["sex"], study["sex_code"], study["condition_code"]) == (UNKNOWN, UNKNOWN_CODE, UNKNOWN_CODE)


def test_subject_document_gathers_its_studies():
    studies = [StudyDocument.from_document(d) for d in (
        {"_id": "2.25.2", "subject_key": "EUCAIM-LOCAL-x", "collection_id": "b", "sex_code": "S1", "age_years": 60.0},
        {"_id": "2.25.1", "subject_key": "EUCAIM-LOCAL-x", "collection_id": "a", "sex_code": "S1", "age_years": 58.5})]
    assert subject_document("EUCAIM-LOCAL-x", studies).to_document() == {
        "_id": "EUCAIM-LOCAL-x", "sex_codes": ["S1"], "collection_ids": ["a", "b"], "study_keys": ["2.25.1", "2.25.2"],
        "study_count": 2, "age_at_first_study_years": 58.5}
