"""Exports of records: FHIR AuditEvent R5/R4B validated by fhir.resources 8, DICOM A.5 by its RELAX NG schema."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.auditevent import AuditEvent as R5
from fhir.resources.R4B.auditevent import AuditEvent as R4B
from lxml import etree

from eucaim_node.ledger.codes import what_of
from eucaim_node.ledger.export import dicom_audit_message, fhir_r4b, fhir_r5
from eucaim_node.ledger.syslog import format_message, frame

SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).with_name("dicom_audit_message.rng"))))
AT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def record(action="StudyQuarantined", **extra):
    base = {
        "_id": "4f5c2d1e-1111-5222-8333-444455556666", "schema": 2, "action": action, "recorded_at": AT,
        "occurred_at": AT, "event_id": "4f5c2d1e-1111-5222-8333-444455556666", "what": what_of(action),
        "outcome": "minor-failure", "outcome_detail": "instances held back: phi-guard (2)", "who": "anonymisation",
        "requestor": False, "entity": "2.25.123",
        "entities": [{"kind": "study", "key": "2.25.123"}, {"kind": "subject", "key": "EUCAIM-LOCAL-ABCDEF"}],
        "causation_id": "0f5c2d1e-1111-5222-8333-444455556666",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "detail": {"quarantined_count": 2, "reasons": {"phi-guard": 2}}, "leaf_index": 7, "leaf_hash": "ab" * 32,
        "source": {"topic": "t", "partition": 0, "offset": 1},
    }
    return {**base, **extra}


@pytest.mark.parametrize("action", ["StudyReceived", "StudyQuarantined", "CollectionUpdated", "DeadLettered"])
def test_fhir_r5_and_r4b_validate(action):
    r5 = R5.model_validate(fhir_r5(record(action), origin="node/audit"))
    r4b = R4B.model_validate(fhir_r4b(record(action), origin="node/audit"))
    assert r5.recorded.isoformat().startswith("2026-03-04T05:06:07.890") and r4b.outcome == "4"
    assert r5.entity[0].what.identifier.value == "urn:oid:2.25.123"


def test_fhir_validation_is_not_vacuous():
    broken = fhir_r5(record(), origin="node/audit")
    broken["action"] = "X"  # not in the AuditEventAction value set
    del broken["agent"]
    with pytest.raises(ValueError):
        R5.model_validate(broken)
    broken4 = fhir_r4b(record(), origin="node/audit")
    del broken4["source"]  # required (1..1)
    with pytest.raises(ValueError):
        R4B.model_validate(broken4)


def test_dicom_message_follows_the_a5_schema_and_the_schema_can_fail():
    xml = dicom_audit_message(record(), origin="node/audit")
    document = etree.fromstring(xml.encode())
    assert SCHEMA.validate(document), SCHEMA.error_log
    assert document.find("EventIdentification/EventID").get("csd-code") == "110104"
    broken = etree.fromstring(xml.encode())
    broken.find("EventIdentification").set("EventOutcomeIndicator", "5")
    assert not SCHEMA.validate(broken)
    reordered = etree.fromstring(xml.encode())
    reordered.append(reordered.find("ActiveParticipant"))  # ActiveParticipant after the objects
    assert not SCHEMA.validate(reordered)


def test_syslog_message_is_rfc5424_with_octet_counting():
    message = format_message("<AuditMessage/>", at=AT, hostname="node 1")
    assert message == "<85>1 2026-03-04T05:06:07.890Z node1 eucaim-node - IHE+RFC-3881 - \ufeff<AuditMessage/>".encode()
    assert frame(message) == str(len(message)).encode() + b" " + message
