"""Event types of the node, one per fact, each on its own versioned topic.

The PHI boundary runs through the anonymisation service: events before it
(``StudyReceived``) carry Orthanc resource IDs of the clinical Orthanc and counts; events
after it carry pseudonymous keys only. No event carries names, patient IDs or birth dates.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .envelope import Event, StudyEvent

ORTHANC_ID = r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeriesRef(_Part):
    orthanc_series_id: str = Field(pattern=ORTHANC_ID)
    instance_count: int = Field(ge=0)


class StudyReceived(StudyEvent):
    """The clinical Orthanc holds a study that has become stable (no new instance for StableAge).

    A study may become stable several times (late instances); each time is an update of the
    same study, never a new one.
    """

    TOPIC: ClassVar[str] = "eucaim.study.received.v1"
    event_type: Literal["StudyReceived"] = "StudyReceived"

    orthanc_study_id: str = Field(pattern=ORTHANC_ID, description="Study ID in the clinical Orthanc.")
    orthanc_last_update: str = Field(description="Orthanc's LastUpdate of the study when it was received.")
    series: tuple[SeriesRef, ...]
    series_count: int = Field(ge=0)
    instance_count: int = Field(ge=0)


class QuarantinedInstance(_Part):
    orthanc_instance_id: str = Field(pattern=ORTHANC_ID, description="Instance ID in the clinical Orthanc.")
    reason: str = Field(description="Machine-readable reason code, e.g. phi-guard, unknown-sop-class.")
    element: str | None = Field(default=None, description="DICOM keyword or tag the reason concerns; never its value.")
    detail: str = Field(default="", max_length=500, description="Human-readable explanation; never contains identifying values.")


class StudyAnonymised(StudyEvent):
    """De-identified instances of the study are stored in the research Orthanc."""

    TOPIC: ClassVar[str] = "eucaim.study.anonymised.v1"
    event_type: Literal["StudyAnonymised"] = "StudyAnonymised"

    research_study_id: str = Field(pattern=ORTHANC_ID, description="Study ID in the research Orthanc.")
    subject_key: str = Field(description="Pseudonymous subject key (the de-identified PatientID).")
    series_count: int = Field(ge=0)
    instance_count: int = Field(ge=0, description="Instances released to the research Orthanc.")
    quarantined_count: int = Field(ge=0, description="Instances held back (see StudyQuarantined).")


class StudyQuarantined(StudyEvent):
    """Instances of the study were held back: they never reach the research Orthanc."""

    TOPIC: ClassVar[str] = "eucaim.study.quarantined.v1"
    event_type: Literal["StudyQuarantined"] = "StudyQuarantined"

    quarantined_count: int = Field(ge=1)
    instances: tuple[QuarantinedInstance, ...] = Field(description="The first 100 quarantined instances with reasons.")


class StudyIndexed(StudyEvent):
    """The catalogue holds the study's current study and series documents."""

    TOPIC: ClassVar[str] = "eucaim.study.indexed.v1"
    event_type: Literal["StudyIndexed"] = "StudyIndexed"

    collection_id: str
    subject_key: str
    series_count: int = Field(ge=0)
    instance_count: int = Field(ge=0)
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]


class CollectionAggregates(_Part):
    subjects: int = Field(ge=0)
    studies: int = Field(ge=0)
    series: int = Field(ge=0)
    instances: int = Field(ge=0)
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]


class CollectionUpdated(Event):
    """A collection's aggregates changed (or were recomputed)."""

    TOPIC: ClassVar[str] = "eucaim.collection.updated.v1"
    event_type: Literal["CollectionUpdated"] = "CollectionUpdated"

    collection_id: str
    aggregates: CollectionAggregates

    def partition_key(self) -> bytes:
        return self.collection_id.encode()


class AccessRecorded(Event):
    """Someone used the node's data or operated the node: a federated query, a catalogue read, a
    withdrawal request, a dead-letter replay. Published by the APIs and the CLI for the audit log.

    ``detail`` holds what an auditor needs (query shape, result size) and never identifying values
    nor the raw counts of cells that small-cell protection suppressed.
    """

    TOPIC: ClassVar[str] = "eucaim.access.v1"
    event_type: Literal["AccessRecorded"] = "AccessRecorded"

    actor: str = Field(min_length=1, description="Authenticated principal: a federation client, an operator (cli:<user>@<host>), a service.")
    action: str = Field(pattern=r"^[a-z][a-z0-9-]{1,62}$", description="What was done, e.g. federated-search, catalogue-read, withdrawal, dlq-replay.")
    target: str | None = Field(default=None, description="What it was done to: a collection ID, a study key, a topic; never an original identifier.")
    outcome: Literal["success", "failure", "denied"] = "success"
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)

    def partition_key(self) -> bytes:
        return (self.target or self.action).encode()


#: Every domain event type, in flow order. The audit service consumes all of their topics.
DOMAIN_EVENTS: tuple[type[Event], ...] = (
    StudyReceived,
    StudyAnonymised,
    StudyQuarantined,
    StudyIndexed,
    CollectionUpdated,
    AccessRecorded,
)
