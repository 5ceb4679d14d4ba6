"""Event contracts of eucaim-node: envelope, event types and topic names."""

from .envelope import Event, StudyEvent, derive_event_id
from .models import (
    DOMAIN_EVENTS,
    AccessRecorded,
    CollectionAggregates,
    CollectionUpdated,
    QuarantinedInstance,
    SeriesRef,
    StudyAnonymised,
    StudyIndexed,
    StudyQuarantined,
    StudyReceived,
)
from .topics import DOMAIN_TOPICS, dead_letter_topic

__all__ = [
    "DOMAIN_EVENTS",
    "DOMAIN_TOPICS",
    "AccessRecorded",
    "CollectionAggregates",
    "CollectionUpdated",
    "Event",
    "QuarantinedInstance",
    "SeriesRef",
    "StudyAnonymised",
    "StudyEvent",
    "StudyIndexed",
    "StudyQuarantined",
    "StudyReceived",
    "dead_letter_topic",
    "derive_event_id",
]
