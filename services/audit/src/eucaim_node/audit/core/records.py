"""One audit record per event: who did what to which pseudonymous entity, when, with what outcome.

Records are keyed by event ID, so a redelivered event never makes a second record. A
dead-lettered message is recorded under an ID derived from its original position
(topic, partition, offset): the same poison message is recorded once however often it is
redelivered. Records carry only what events carry: pseudonymous keys, Orthanc IDs, counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eucaim_node.events import derive_event_id

#: Outcome per event type (DICOM audit EventOutcomeIndicator semantics, PS3.15 A.5.3: 0 success, 4 minor failure).
_OUTCOMES = {"StudyQuarantined": "minor-failure"}
_ACCESS_OUTCOMES = {"success": "success", "failure": "serious-failure", "denied": "minor-failure"}
_SUMMARY_FIELDS = ("action", "detail", "series_count", "instance_count", "quarantined_count", "collection_id", "subject_key",
                   "orthanc_study_id", "research_study_id")


@dataclass(frozen=True)
class KafkaPosition:
    topic: str
    partition: int
    offset: int


def audit_record(body: bytes, headers: dict[str, str], position: KafkaPosition, recorded_at: datetime) -> dict[str, Any]:
    """The audit document for one consumed message (domain event or dead letter)."""
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("not an object")
    except ValueError:
        event = {}

    if "x-dlq-original-topic" in headers:
        return {
            "_id": str(derive_event_id("DeadLettered", headers["x-dlq-original-topic"],
                                       headers.get("x-dlq-original-partition", ""), headers.get("x-dlq-original-offset", ""))),
            "action": "DeadLettered",
            "outcome": "serious-failure",
            "who": position.topic.removeprefix("eucaim.dlq.").removesuffix(".v1"),
            "occurred_at": recorded_at,
            "recorded_at": recorded_at,
            "entity": event.get("study_key") or event.get("collection_id"),
            "original_event_id": event.get("event_id"),
            "original_event_type": event.get("event_type"),
            "detail": {"topic": headers["x-dlq-original-topic"], "error": headers.get("x-dlq-error", "")[:300],
                       "attempts": headers.get("x-dlq-attempts")},
            "source": {"topic": position.topic, "partition": position.partition, "offset": position.offset},
        }
    if "event_id" not in event:
        return {
            "_id": str(derive_event_id("Unreadable", position.topic, position.partition, position.offset)),
            "action": "UnreadableEvent",
            "outcome": "serious-failure",
            "who": None,
            "occurred_at": recorded_at,
            "recorded_at": recorded_at,
            "entity": None,
            "detail": {"bytes": len(body)},
            "source": {"topic": position.topic, "partition": position.partition, "offset": position.offset},
        }
    event_type = str(event.get("event_type"))
    return {
        "_id": str(event["event_id"]),
        "action": event_type,
        "outcome": _ACCESS_OUTCOMES.get(event.get("outcome"), "success") if event_type == "AccessRecorded"
        else _OUTCOMES.get(event_type, "success"),
        "who": event.get("actor") or event.get("producer"),
        "occurred_at": event.get("occurred_at"),
        "recorded_at": recorded_at,
        "entity": event.get("study_key") or event.get("collection_id") or event.get("target"),
        "causation_id": event.get("causation_id"),
        "traceparent": event.get("traceparent"),
        "detail": {k: event[k] for k in _SUMMARY_FIELDS if k in event},
        "source": {"topic": position.topic, "partition": position.partition, "offset": position.offset},
    }
