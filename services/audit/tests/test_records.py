import json
from datetime import UTC, datetime

from eucaim_node.audit.core.records import KafkaPosition, audit_record
from eucaim_node.ledger import canonical_bytes

AT = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
POS = KafkaPosition("eucaim.study.quarantined.v1", 2, 41)
CLINICAL_ID = "0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d"


def test_domain_event_record_is_keyed_by_event_id_and_coded():
    body = json.dumps({"event_id": "e-1", "event_type": "StudyQuarantined", "producer": "anonymisation",
                       "occurred_at": "2026-01-01T00:00:00Z", "study_key": "2.25.5", "quarantined_count": 2,
                       "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                       "instances": [{"orthanc_instance_id": CLINICAL_ID, "reason": "phi-guard", "detail": "free text"},
                                     {"orthanc_instance_id": CLINICAL_ID, "reason": "phi-guard"}]}).encode()
    record = audit_record(body, {}, POS, AT)
    assert record["_id"] == "e-1" and record["action"] == "StudyQuarantined" and record["outcome"] == "minor-failure"
    assert record["what"] == {"system": "DCM", "code": "110104", "display": "DICOM Instances Transferred", "action": "C"}
    assert record["entity"] == "2.25.5" and record["entities"] == [{"kind": "study", "key": "2.25.5"}]
    assert record["detail"] == {"quarantined_count": 2, "reasons": {"phi-guard": 2}}
    assert record["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert record["recorded_at"].microsecond == 123000  # what MongoDB keeps
    assert audit_record(body, {}, POS, AT) == record


def test_clinical_orthanc_ids_and_free_text_never_reach_the_record():
    body = json.dumps({"event_id": "e-2", "event_type": "StudyReceived", "producer": "reception",
                       "study_key": "2.25.7", "orthanc_study_id": CLINICAL_ID, "orthanc_last_update": "20260101T000000",
                       "series": [{"orthanc_series_id": CLINICAL_ID, "instance_count": 3}],
                       "series_count": 1, "instance_count": 3}).encode()
    record = audit_record(body, {}, KafkaPosition("eucaim.study.received.v1", 0, 1), AT)
    text = canonical_bytes(record).decode()
    assert CLINICAL_ID not in text and "20260101T000000" not in text
    assert record["detail"] == {"series_count": 1, "instance_count": 3}


def test_dead_letter_record_is_keyed_by_original_position():
    headers = {"x-dlq-original-topic": "eucaim.study.received.v1", "x-dlq-original-partition": "0",
               "x-dlq-original-offset": "9", "x-dlq-error": "ValueError: bad", "x-dlq-attempts": "3"}
    dlq = KafkaPosition("eucaim.dlq.anonymisation.v1", 0, 0)
    first = audit_record(b"not json", headers, dlq, AT)
    again = audit_record(b"not json", headers, KafkaPosition("eucaim.dlq.anonymisation.v1", 0, 5), AT)
    assert first["_id"] == again["_id"] and first["action"] == "DeadLettered" and first["who"] == "anonymisation"
    assert first["outcome_detail"] == "ValueError: bad" and first["what"]["code"] == "dead-lettered"


def test_unreadable_message_gets_a_record_not_a_crash():
    record = audit_record(b"\xff\x00", {}, POS, AT)
    assert record["action"] == "UnreadableEvent" and record["detail"] == {"bytes": 2}


def test_access_event_names_the_actor_and_target_and_is_a_request():
    body = json.dumps({"event_id": "a-1", "event_type": "AccessRecorded", "producer": "cli", "actor": "cli:root@node",
                       "action": "dlq-replay", "target": "eucaim.dlq.metadata.v1", "outcome": "denied",
                       "detail": {"messages": 3}}).encode()
    record = audit_record(body, {}, KafkaPosition("eucaim.access.v1", 0, 1), AT)
    assert (record["who"], record["entity"], record["outcome"]) == ("cli:root@node", "eucaim.dlq.metadata.v1", "minor-failure")
    assert record["requestor"] is True and record["detail"] == {"action": "dlq-replay", "detail": {"messages": 3}}
    audit = json.dumps({"event_id": "a-2", "event_type": "AccessRecorded", "producer": "cli", "actor": "cli:op@h",
                        "action": "audit-export"}).encode()
    assert audit_record(audit, {}, KafkaPosition("eucaim.access.v1", 0, 2), AT)["what"]["code"] == "110101"
