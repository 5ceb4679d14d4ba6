"""One audit record per event: who did what to which pseudonymous entity, when, with what outcome.

Records are keyed by event ID, so a redelivered event never makes a second record (nor a second
Merkle leaf: see ``adapters.ledger``). A dead-lettered message is recorded under an ID derived from
its original position (topic, partition, offset): the same poison message is recorded once however
often it is redelivered.

What a record may hold is an allow-list: pseudonymous keys (study key = keyed-HMAC UID, subject
pseudonym, collection ID), research-side Orthanc IDs (hashes of pseudonyms), counts, reason codes,
trace context. The clinical Orthanc IDs that ``StudyReceived``/``StudyQuarantined`` carry are
*unkeyed* SHA-1 hashes of the original PatientID and UIDs, so they are left out: the study key is
already the keyed hash of the original StudyInstanceUID that ties the record to the study.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eucaim_node.events import derive_event_id
from eucaim_node.ledger import normalise
from eucaim_node.ledger.codes import what_of

#: Version of the record layout (part of the hashed record).
RECORD_SCHEMA = 2

_OUTCOMES = {"StudyQuarantined": "minor-failure"}
_ACCESS_OUTCOMES = {"success": "success", "failure": "serious-failure", "denied": "minor-failure"}
#: Payload fields copied into ``detail`` (counts and codes, never identifiers).
_SUMMARY_FIELDS = ("series_count", "instance_count", "quarantined_count", "modalities", "body_parts")
#: Payload fields naming entities, and the kind of entity each names.
_ENTITY_FIELDS = (("study_key", "study"), ("subject_key", "subject"), ("collection_id", "collection"),
                  ("research_study_id", "research-study"), ("target", "target"))
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class KafkaPosition:
    topic: str
    partition: int
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def _parse_time(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
    return default


def _entities(event: dict[str, Any]) -> list[dict[str, str]]:
    return [{"kind": kind, "key": str(event[field])} for field, kind in _ENTITY_FIELDS
            if isinstance(event.get(field), (str, int)) and str(event[field])]


def _trace_id(traceparent: Any) -> str | None:
    match = _TRACEPARENT.match(traceparent) if isinstance(traceparent, str) else None
    return match.group(1) if match else None


def _base(record_id: str, action: str, recorded_at: datetime, position: KafkaPosition) -> dict[str, Any]:
    return {"_id": record_id, "schema": RECORD_SCHEMA, "action": action, "recorded_at": recorded_at,
            "source": position.as_dict()}


def audit_record(body: bytes, headers: dict[str, str], position: KafkaPosition, recorded_at: datetime) -> dict[str, Any]:
    """The audit document for one consumed message (domain event or dead letter), without its leaf."""
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("not an object")
    except ValueError:
        event = {}

    if "x-dlq-original-topic" in headers:
        original = headers["x-dlq-original-topic"]
        record_id = str(derive_event_id("DeadLettered", original, headers.get("x-dlq-original-partition", ""),
                                        headers.get("x-dlq-original-offset", "")))
        entities = [e for e in _entities(event) if e["kind"] in ("study", "collection")]
        record = _base(record_id, "DeadLettered", recorded_at, position) | {
            "event_id": str(event["event_id"]) if event.get("event_id") else None,
            "what": what_of("DeadLettered"),
            "outcome": "serious-failure",
            "outcome_detail": headers.get("x-dlq-error", "")[:300],
            "who": position.topic.removeprefix("eucaim.dlq.").removesuffix(".v1"),
            "requestor": False,
            "occurred_at": recorded_at,
            "entity": entities[0]["key"] if entities else None,
            "entities": [*entities, {"kind": "topic", "key": original}],
            "causation_id": None, "traceparent": None, "trace_id": None,
            "detail": {"original_event_type": event.get("event_type") if isinstance(event.get("event_type"), str) else None,
                       "original_partition": headers.get("x-dlq-original-partition"),
                       "original_offset": headers.get("x-dlq-original-offset"),
                       "attempts": headers.get("x-dlq-attempts")},
        }
        return normalise(record)

    if "event_id" not in event:
        record_id = str(derive_event_id("Unreadable", position.topic, position.partition, position.offset))
        record = _base(record_id, "UnreadableEvent", recorded_at, position) | {
            "event_id": None, "what": what_of("UnreadableEvent"), "outcome": "serious-failure",
            "outcome_detail": "the message is not a readable event", "who": None, "requestor": False,
            "occurred_at": recorded_at, "entity": None, "entities": [{"kind": "topic", "key": position.topic}],
            "causation_id": None, "traceparent": None, "trace_id": None, "detail": {"bytes": len(body)},
        }
        return normalise(record)

    event_type = str(event.get("event_type"))
    access = event_type == "AccessRecorded"
    detail: dict[str, Any] = {k: event[k] for k in _SUMMARY_FIELDS if k in event}
    outcome_detail = None
    if access:
        detail["action"] = event.get("action")
        if event.get("detail"):
            detail["detail"] = event["detail"]
        outcome = _ACCESS_OUTCOMES.get(event.get("outcome"), "serious-failure")
    else:
        outcome = _OUTCOMES.get(event_type, "success")
    if event_type == "StudyQuarantined":
        reasons = Counter(str(i.get("reason")) for i in event.get("instances") or () if isinstance(i, dict))
        detail["reasons"] = dict(sorted(reasons.items()))
        outcome_detail = "instances held back: " + ", ".join(f"{r} ({n})" for r, n in sorted(reasons.items()))
    entities = _entities(event)
    record = _base(str(event["event_id"]), event_type, recorded_at, position) | {
        "event_id": str(event["event_id"]),
        "what": what_of(event_type, event.get("action") if access else None),
        "outcome": outcome,
        "outcome_detail": outcome_detail,
        "who": event.get("actor") or event.get("producer"),
        "requestor": access,
        "occurred_at": _parse_time(event.get("occurred_at"), recorded_at),
        "entity": event.get("study_key") or event.get("collection_id") or event.get("target"),
        "entities": entities,
        "causation_id": event.get("causation_id"),
        "traceparent": event.get("traceparent"),
        "trace_id": _trace_id(event.get("traceparent")),
        "detail": detail,
    }
    return normalise(record)
