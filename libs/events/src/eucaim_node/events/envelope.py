"""The envelope every event on the node's Kafka topics carries.

Events are claim checks: they name what to fetch (Orthanc resource IDs, pseudonymous keys)
and never carry pixel data or clear identifiers. Event IDs are derived deterministically
from what caused them, so a redelivered input produces the *same* output event and every
consumer can deduplicate on ``event_id``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

#: Namespace of every event ID minted by the node (uuid5 over the cause's parts).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1bde-8a0e-5b1f-9a43-3b1e0c9d2a71")


#: One part of an event's cause: an event ID, a resource's stable name, a version number.
CausePart = str | uuid.UUID | int


def derive_event_id(*parts: CausePart) -> uuid.UUID:
    """Return the event ID determined by ``parts`` (same parts, same ID, in every run)."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(str(p) for p in parts))


def utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Fields common to every event (the envelope). Subclasses add the payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Kafka topic the event type is published on; versioned with the schema.
    TOPIC: ClassVar[str]
    #: Major schema version; a breaking change gets a new topic name.
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: uuid.UUID = Field(description="Unique and deterministic: derived from the cause, so redeliveries deduplicate.")
    event_type: str = Field(description="The event's class name, e.g. StudyReceived.")
    schema_version: int = Field(default=1, description="Schema version of this event type.")
    occurred_at: datetime = Field(default_factory=utc_now, description="When the producer observed the fact (UTC).")
    producer: str = Field(description="Service that published the event.")
    causation_id: uuid.UUID | None = Field(default=None, description="event_id of the event this one was caused by.")
    traceparent: str | None = Field(default=None, description="W3C trace context of the producing span.")

    def partition_key(self) -> bytes:
        """Kafka message key: events with the same key stay ordered on one partition."""
        raise NotImplementedError

    @classmethod
    def create(cls, *, cause: CausePart | Event | tuple[CausePart | Event, ...], producer: str,
               caused_by: Event | None = None, **payload) -> Self:
        """Build an event whose ID is derived from its own type and its cause.

        ``cause`` is the triggering event, a stable string naming an external fact (such as an Orthanc
        study state), or a tuple of such parts when one cause yields several events (a withdrawal
        removes each of a subject's studies: ``cause=(event, study_key)``). An event among the parts
        stands for its ``event_id``. Reprocessing the same cause yields the same event ID.

        ``causation_id`` is ``caused_by``'s ID if given (an event that caused this one without being part
        of its identity), else the first event among the parts, else none.
        """
        parts = cause if isinstance(cause, tuple) else (cause,)
        if caused_by is None:
            caused_by = next((p for p in parts if isinstance(p, Event)), None)
        return cls(
            event_id=derive_event_id(cls.__name__, *(p.event_id if isinstance(p, Event) else p for p in parts)),
            event_type=cls.__name__,
            schema_version=cls.SCHEMA_VERSION,
            producer=producer,
            causation_id=caused_by.event_id if caused_by is not None else None,
            **payload,
        )


class StudyEvent(Event):
    """An event about one study. ``study_key`` is the study's pseudonymous key.

    The study key is the keyed-HMAC pseudonym of the original StudyInstanceUID (a ``2.25.``
    UID), which is also the StudyInstanceUID of the de-identified study in the research
    Orthanc: one key names the study on every topic and in the catalogue.
    """

    study_key: str = Field(pattern=r"^2\.25\.\d{1,60}$", description="Pseudonymous study key (keyed-HMAC UID).")

    def partition_key(self) -> bytes:
        return self.study_key.encode()
