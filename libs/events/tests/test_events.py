import uuid

import pytest
from pydantic import ValidationError

from eucaim_node.events import (
    DOMAIN_EVENTS,
    DOMAIN_TOPICS,
    CollectionDelivered,
    CollectionPublished,
    SeriesPixelCheck,
    SeriesRef,
    StudyAnonymised,
    StudyReceived,
    StudyRemoved,
    StudyWithdrawn,
    WithdrawalRequested,
    dead_letter_topic,
    derive_event_id,
)

STUDY_ID = "6e2c0ec2-5d99c8ca-c1c21cee-79a09605-68391d12"
SERIES_ID = "1b4e5c2a-0f8d7e6c-5b4a3928-17160504-f3e2d1c0"


def received(cause: str = "study@1") -> StudyReceived:
    return StudyReceived.create(
        cause=cause, producer="reception", study_key="2.25.1234567890", orthanc_study_id=STUDY_ID,
        orthanc_last_update="20260101T101010", series=(SeriesRef(orthanc_series_id=SERIES_ID, instance_count=3),),
        series_count=1, instance_count=3,
    )


def test_same_cause_gives_same_event_id_and_another_cause_another():
    assert received("a").event_id == received("a").event_id
    assert received("a").event_id != received("b").event_id


def test_event_caused_by_an_event_derives_its_id_and_records_causation():
    cause = received()
    kwargs = dict(producer="anonymisation", study_key=cause.study_key, research_study_id=STUDY_ID,
                  subject_key="EUCAIM-LOCAL-ab12", series_count=1, instance_count=3, quarantined_count=0)
    first, again = StudyAnonymised.create(cause=cause, **kwargs), StudyAnonymised.create(cause=cause, **kwargs)
    assert first.event_id == again.event_id == derive_event_id("StudyAnonymised", cause.event_id)
    assert first.causation_id == cause.event_id
    assert first.event_id != cause.event_id


def anonymised(**extra) -> StudyAnonymised:
    return StudyAnonymised.create(cause=received(), producer="anonymisation", study_key="2.25.1234567890",
                                  research_study_id=STUDY_ID, subject_key="EUCAIM-LOCAL-ab12", series_count=1,
                                  instance_count=3, quarantined_count=0, **extra)


def test_an_anonymised_event_without_pixel_judgements_still_validates():
    """Events of producers before the field (and their redeliveries) read as 'nothing judged'."""
    wire = anonymised().model_dump(mode="json")
    del wire["native_pixels"]
    assert StudyAnonymised.model_validate(wire).native_pixels == ()


def test_pixel_judgements_round_trip_and_cannot_count_more_incomplete_than_judged():
    check = SeriesPixelCheck(research_series_id=SERIES_ID, images_judged=3, incomplete=1)
    event = anonymised(native_pixels=(check,))
    assert StudyAnonymised.model_validate_json(event.model_dump_json()).native_pixels == (check,)
    with pytest.raises(ValidationError):
        SeriesPixelCheck(research_series_id=SERIES_ID, images_judged=1, incomplete=2)
    with pytest.raises(ValidationError):  # keyed by the research (pseudonymous) series ID, nothing else
        SeriesPixelCheck(research_series_id="1.2.840.113619.2.55.3", images_judged=1, incomplete=0)
    with pytest.raises(ValidationError):
        SeriesPixelCheck(research_series_id=SERIES_ID, images_judged=1, incomplete=0, series_uid="1.2.3")


def test_wire_round_trip_is_lossless():
    event = received()
    assert StudyReceived.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("bad_key", ["1.2.840.113619.2.55", "DOE^JANE", "2.25.", "2.25.12a"])
def test_study_key_must_be_a_pseudonymous_uid(bad_key):
    with pytest.raises(ValidationError):
        StudyReceived.create(cause="x", producer="reception", study_key=bad_key, orthanc_study_id=STUDY_ID,
                             orthanc_last_update="x", series=(), series_count=0, instance_count=0)


def test_unknown_fields_are_rejected_so_identifiers_cannot_ride_along():
    payload = received().model_dump(mode="json") | {"patient_name": "DOE^JANE"}
    with pytest.raises(ValidationError):
        StudyReceived.model_validate(payload)


def test_partition_key_is_the_study_key():
    assert received().partition_key() == b"2.25.1234567890"


def test_topics_are_versioned_and_unique():
    assert len(set(DOMAIN_TOPICS)) == len(DOMAIN_EVENTS)
    assert all(t.startswith("eucaim.") and t.endswith(".v1") for t in DOMAIN_TOPICS)
    assert dead_letter_topic("metadata") == "eucaim.dlq.metadata.v1"


def test_event_id_derivation_is_stable_across_releases():
    # A redelivery after an upgrade must carry the ID the audit already recorded: changing the
    # namespace or the joining of parts would make every replayed event look new.
    cause = "f575eab3-07a2eb79-328878cd-4e8482d0-a97f9ffb@20260101T000000"
    assert derive_event_id("StudyReceived", cause) == uuid.UUID("27e8635c-7df0-5e1f-8753-bb86482748f8")


# IDs the services minted by hand (derive_event_id) before Event.create took several cause parts; pinned so the
# move to Event.create keeps every ID byte-identical (a restarted consumer must mint the IDs it minted before).
PINNED_CAUSE = uuid.UUID("0b9f7e0e-2c51-5e8a-9d0e-4b7f3f1d2a10")
DIGEST = "a" * 64
SUBJECT = "EUCAIM-LOCAL-0123456789abcdef0123"


@pytest.mark.parametrize(("parts", "expected"), [
    (("StudyRemoved", PINNED_CAUSE, "2.25.1234567890"), "566e3690-ac9e-5d21-8a39-38f8912b17ea"),
    (("StudyWithdrawn", PINNED_CAUSE, "2.25.1234567890"), "7683d0da-7b1e-5b85-870b-53dc5c72dc5c"),
    (("CollectionPublished", "col-a", 3, DIGEST), "b6989cfe-69cd-5bb9-83eb-fb008c3406ee"),
    (("CollectionDelivered", "col-a@3"), "da252f02-af63-54bb-b876-ca7b07dfa538"),
])
def test_ids_of_events_with_several_cause_parts_are_pinned(parts, expected):
    assert derive_event_id(*parts) == uuid.UUID(expected)


def _withdrawal() -> WithdrawalRequested:
    return WithdrawalRequested(event_id=PINNED_CAUSE, event_type="WithdrawalRequested", producer="operator",
                               subject_key=SUBJECT)


def test_create_with_several_cause_parts_mints_the_pinned_ids_and_records_the_causing_event():
    cause, study = _withdrawal(), "2.25.1234567890"
    removed = StudyRemoved.create(cause=(cause, study), producer="metadata", study_key=study, subject_key=SUBJECT,
                                  collection_id="col-a")
    withdrawn = StudyWithdrawn.create(cause=(cause, study), producer="anonymisation", study_key=study,
                                      subject_key=SUBJECT)
    assert removed.event_id == uuid.UUID("566e3690-ac9e-5d21-8a39-38f8912b17ea")
    assert withdrawn.event_id == uuid.UUID("7683d0da-7b1e-5b85-870b-53dc5c72dc5c")
    assert removed.causation_id == withdrawn.causation_id == PINNED_CAUSE
    other = StudyRemoved.create(cause=(cause, "2.25.987"), producer="metadata", study_key="2.25.987",
                                subject_key=SUBJECT, collection_id="col-a")
    assert other.event_id != removed.event_id


def test_create_from_plain_parts_with_a_separate_causing_event():
    published = dict(producer="catalogue-sync", collection_id="col-a", version=3, content_hash=DIGEST,
                     shacl_conforms=True, shacl_violations=0)
    caused = CollectionPublished.create(cause=("col-a", 3, DIGEST), caused_by=_withdrawal(), **published)
    uncaused = CollectionPublished.create(cause=("col-a", 3, DIGEST), **published)
    assert caused.event_id == uncaused.event_id == uuid.UUID("b6989cfe-69cd-5bb9-83eb-fb008c3406ee")
    assert (caused.causation_id, uncaused.causation_id) == (PINNED_CAUSE, None)
    delivered = CollectionDelivered.create(cause="col-a@3", producer="catalogue-sync", collection_id="col-a",
                                           version=3, attempts=1, http_status=200)
    assert delivered.event_id == uuid.UUID("da252f02-af63-54bb-b876-ca7b07dfa538")
    assert delivered.causation_id is None
