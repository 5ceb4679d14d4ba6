"""The catalogue contract: stored examples (as metadata wrote them before the models existed) read and write back
unchanged, every field of every model is pinned by a stored name, and a wrong name fails loudly."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from eucaim_node.catalogue.documents import (REMOVED, SERIES, STUDY, SUBJECT, CatalogueDocument, FieldNames,
                                              RemovedStudy, SeriesDocument, StudyDocument, SubjectDocument)

AT = datetime(2026, 1, 1, 12, 0)
QUALITY_STUDY = {"series_checked": 1, "flagged": {"missing_slices": 0}, "tag_present": {"Manufacturer": 1}, "flags": []}

#: Stored examples, field for field and in the order metadata has always written them.
STORED: dict[type[CatalogueDocument], dict] = {
    StudyDocument: {
        "_id": "2.25.1", "cdm": "eucaim-cdm-imaging/1", "subject_key": "EUCAIM-LOCAL-x", "collection_id": "lung",
        "condition_code": "SNOMEDCT363358000", "condition_label": "Lung cancer", "study_date": "20240101",
        "sex": "F", "sex_code": "SNOMEDCT248152002", "age_years": 61.0, "modalities": ["CT", "SEG"],
        "modality_codes": ["RID10321"], "body_parts": ["CHEST"], "body_part_codes": ["SNOMEDCT43799004"],
        "body_region_codes": ["SNOMEDCT39607008"], "manufacturers": ["SIEMENS"], "manufacturer_codes": ["birnlex_3066"],
        "contrast": True, "programme": "lung-screening", "programme_source": "rule", "cancer_type": "lung",
        "cancer_type_source": "collection", "assessments": ["PI-RADS 3"], "assessment_codes": ["RID50283"],
        "series_count": 2, "instance_count": 4, "indexed_at": AT, "source_event_id": "e-1", "quality": QUALITY_STUDY,
    },
    SeriesDocument: {
        "_id": "2.25.7", "study_key": "2.25.1", "subject_key": "EUCAIM-LOCAL-x", "modality": "CT",
        "modality_code": "RID10321", "body_part": "CHEST", "body_part_code": "SNOMEDCT43799004",
        "body_region_codes": ["SNOMEDCT39607008"], "manufacturer": "SIEMENS", "manufacturer_code": "birnlex_3066",
        "model": "SOMATOM", "series_date": "20200101", "slice_thickness_mm": 1.25, "pixel_spacing_mm": [0.7, 0.7],
        "contrast": True, "instance_count": 3, "quality": {"applicable": True, "flags": ["missing_slices"]},
    },
    SubjectDocument: {
        "_id": "EUCAIM-LOCAL-x", "sex_codes": ["S1"], "collection_ids": ["a", "b"], "study_keys": ["2.25.1", "2.25.2"],
        "study_count": 2, "age_at_first_study_years": 58.5,
    },
    RemovedStudy: {"_id": "2.25.1", "collection_id": "lung", "subject_key": "EUCAIM-LOCAL-x", "removed_at": AT},
}
NAMES: dict[type[CatalogueDocument], FieldNames] = {StudyDocument: STUDY, SeriesDocument: SERIES,
                                                    SubjectDocument: SUBJECT, RemovedStudy: REMOVED}


@pytest.mark.parametrize("model", list(STORED), ids=lambda m: m.__name__)
def test_a_stored_document_reads_and_writes_back_byte_for_byte(model):
    stored = STORED[model]
    written = model.from_document(stored).to_document()
    assert written == stored
    assert list(written) == list(stored)  # the same order: MongoDB keeps a document's field order


@pytest.mark.parametrize("model", list(STORED), ids=lambda m: m.__name__)
def test_every_field_of_the_model_is_a_stored_name_of_the_example(model):
    # A field renamed in the model (its stored name changes) fails here: readers of existing data would miss it.
    assert sorted(NAMES[model]) == sorted(STORED[model])


@pytest.mark.parametrize("model", list(STORED), ids=lambda m: m.__name__)
def test_every_field_round_trips_through_the_model(model):
    document = model.from_document(STORED[model])
    for name, field in model.model_fields.items():
        assert getattr(document, name) == STORED[model][field.alias or name], name


def test_the_writers_revision_beside_a_subject_is_ignored_on_read():
    assert SubjectDocument.from_document({**STORED[SubjectDocument], "revision": 7}).to_document() == STORED[SubjectDocument]


def test_a_study_written_before_the_newer_fields_reads_with_the_readers_defaults():
    first = {"_id": "2.25.1", "subject_key": "EUCAIM-LOCAL-x", "collection_id": "default", "modalities": ["CT"],
             "series_count": 1, "instance_count": 2, "indexed_at": AT}
    study = StudyDocument.from_document(first)
    assert (study.programme, study.cancer_type, study.quality, study.body_region_codes) == ("unknown", "other", None, [])
    assert "quality" not in study.to_document()  # left out while None: a study not yet assessed stays as stored


@pytest.mark.parametrize(("model", "missing"), [(StudyDocument, "collection_id"), (SeriesDocument, "study_key"),
                                                (RemovedStudy, "removed_at"), (StudyDocument, "_id")])
def test_a_document_without_a_required_field_is_refused_naming_it(model, missing):
    stored = {k: v for k, v in STORED[model].items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        model.from_document(stored)


def test_a_renamed_field_written_under_its_old_name_is_refused():
    renamed = {("collection" if k == "collection_id" else k): v for k, v in STORED[StudyDocument].items()}
    with pytest.raises(ValidationError, match="collection_id"):
        StudyDocument.from_document(renamed)


def test_field_names_are_the_stored_names_and_a_wrong_one_raises():
    assert (STUDY.key, STUDY.collection_id, SERIES.study_key, SUBJECT.study_keys) == (
        "_id", "collection_id", "study_key", "study_keys")
    with pytest.raises(AttributeError, match="StudyDocument has no field 'collection'"):
        _ = STUDY.collection
    assert STUDY.projection("subject_key", "collection_id") == {"subject_key": 1, "collection_id": 1}
    with pytest.raises(KeyError, match="modality_code"):
        STUDY.projection("subject_key", "modality_code")  # a series field, not a study's
    assert STUDY.require({"age_years", "quality.flags"}) == {"age_years", "quality.flags"}
    with pytest.raises(KeyError, match="age"):
        STUDY.require({"age"})
