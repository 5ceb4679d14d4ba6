from datetime import UTC, datetime

import pytest

from eucaim_node.metadata.core.documents import UNKNOWN, age_in_years, series_document, study_document


@pytest.mark.parametrize(("value", "years"), [("045Y", 45.0), ("006M", 0.5), ("014D", 0.04), ("052W", 1.0),
                                               (None, None), ("", None), ("45Y", None), ("045X", None)])
def test_age_string_decoding(value, years):
    assert age_in_years(value) == years


def test_series_and_study_documents():
    series = {"MainDicomTags": {"SeriesInstanceUID": "2.25.7", "Modality": "CT", "BodyPartExamined": "chest"},
              "Instances": ["a", "b", "c"]}
    tags = {"Manufacturer": "ACME", "SliceThickness": "1.25", "PixelSpacing": "0.7\\0.7", "PatientSex": "F",
            "PatientAge": "061Y", "ContrastBolusAgent": ""}
    s = series_document(series, tags, study_key="2.25.1")
    assert s == {"_id": "2.25.7", "study_key": "2.25.1", "modality": "CT", "body_part": "CHEST",
                 "manufacturer": "ACME", "model": None, "slice_thickness_mm": 1.25, "pixel_spacing_mm": [0.7, 0.7],
                 "contrast": False, "instance_count": 3}
    second = series_document({"MainDicomTags": {"SeriesInstanceUID": "2.25.8", "Modality": "CT"}, "Instances": ["d"]},
                             {}, study_key="2.25.1")
    assert second["body_part"] == UNKNOWN and second["manufacturer"] == UNKNOWN
    at = datetime(2026, 1, 1, tzinfo=UTC)
    study = study_document({"MainDicomTags": {"StudyDate": "20240101"}, "PatientMainDicomTags": {"PatientID": "EUCAIM-LOCAL-x"}},
                           [s, second], tags, study_key="2.25.1", collection_id="default", indexed_at=at, source_event_id="e")
    assert study["subject_key"] == "EUCAIM-LOCAL-x"
    assert (study["series_count"], study["instance_count"]) == (2, 4)
    assert study["body_parts"] == ["CHEST", UNKNOWN] and study["modalities"] == ["CT"]
    assert study["sex"] == "F" and study["age_years"] == 61.0
