"""Event contracts of eucaim-node: envelope, event types and topic names."""

from .envelope import Event, StudyEvent, derive_event_id
from .models import (
    DOMAIN_EVENTS,
    AccessRecorded,
    CollectionAggregates,
    CollectionDelivered,
    CollectionPublished,
    CollectionUpdated,
    QuarantinedInstance,
    SeriesRef,
    StudyAnonymised,
    StudyIndexed,
    StudyQuarantined,
    StudyReceived,
    StudyRemoved,
    StudyWithdrawn,
    StudyWithheld,
    WithdrawalRequested,
)
from .topics import DOMAIN_TOPICS, dead_letter_topic

__all__ = [
    "DOMAIN_EVENTS",
    "DOMAIN_TOPICS",
    "AccessRecorded",
    "CollectionAggregates",
    "CollectionDelivered",
    "CollectionPublished",
    "CollectionUpdated",
    "Event",
    "QuarantinedInstance",
    "SeriesRef",
    "StudyAnonymised",
    "StudyEvent",
    "StudyIndexed",
    "StudyQuarantined",
    "StudyReceived",
    "StudyRemoved",
    "StudyWithdrawn",
    "StudyWithheld",
    "WithdrawalRequested",
    "dead_letter_topic",
    "derive_event_id",
]
