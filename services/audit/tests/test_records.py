import json
from datetime import UTC, datetime

from eucaim_node.audit.core.records import KafkaPosition, audit_record

AT = datetime(2026, 1, 1, tzinfo=UTC)
POS = KafkaPosition("eucaim.study.quarantined.v1", 2, 41)


def test_domain_event_record_is_keyed_by_event_id():
    body = json.dumps({"event_id": "e-1", "event_type": "StudyQuarantined", "producer": "anonymisation",
                       "occurred_at": "2026-01-01T00:00:00Z", "study_key": "2.25.5", "quarantined_count": 2,
                       "instances": [{"detail": "free text"}]}).encode()
    record = audit_record(body, {}, POS, AT)
    assert record["_id"] == "e-1" and record["action"] == "StudyQuarantined" and record["outcome"] == "minor-failure"
    assert record["entity"] == "2.25.5" and record["detail"] == {"quarantined_count": 2}
    assert audit_record(body, {}, POS, AT)["_id"] == record["_id"]


def test_dead_letter_record_is_keyed_by_original_position():
    headers = {"x-dlq-original-topic": "eucaim.study.received.v1", "x-dlq-original-partition": "0",
               "x-dlq-original-offset": "9", "x-dlq-error": "ValueError: bad", "x-dlq-attempts": "3"}
    dlq = KafkaPosition("eucaim.dlq.anonymisation.v1", 0, 0)
    first = audit_record(b"not json", headers, dlq, AT)
    again = audit_record(b"not json", headers, KafkaPosition("eucaim.dlq.anonymisation.v1", 0, 5), AT)
    assert first["_id"] == again["_id"] and first["action"] == "DeadLettered" and first["who"] == "anonymisation"
    assert first["detail"]["error"] == "ValueError: bad"


def test_unreadable_message_gets_a_record_not_a_crash():
    record = audit_record(b"\xff\x00", {}, POS, AT)
    assert record["action"] == "UnreadableEvent" and record["detail"] == {"bytes": 2}


def test_access_event_names_the_actor_and_target():
    body = json.dumps({"event_id": "a-1", "event_type": "AccessRecorded", "producer": "cli", "actor": "cli:root@node",
                       "action": "dlq-replay", "target": "eucaim.dlq.metadata.v1", "outcome": "denied",
                       "detail": {"messages": 3}}).encode()
    record = audit_record(body, {}, KafkaPosition("eucaim.access.v1", 0, 1), AT)
    assert (record["who"], record["entity"], record["outcome"]) == ("cli:root@node", "eucaim.dlq.metadata.v1", "minor-failure")
    assert record["detail"] == {"action": "dlq-replay", "detail": {"messages": 3}}
