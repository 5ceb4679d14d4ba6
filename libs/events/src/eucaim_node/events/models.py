"""Event types of the node, one per fact, each on its own versioned topic.

The PHI boundary runs through the anonymisation service: events before it
(``StudyReceived``) carry Orthanc resource IDs of the clinical Orthanc and counts; events
after it carry pseudonymous keys only. No event carries names, patient IDs or birth dates.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class SeriesPixelCheck(_Part):
    """Native pixel data of one research series' released image instances, judged by anonymisation on the bytes it
    stored (decision 0131): how many were judged and how many hold fewer bytes than their image attributes need."""

    research_series_id: str = Field(pattern=ORTHANC_ID, description="Series ID in the research Orthanc.")
    images_judged: int = Field(ge=1, description="Released instances of the series, every one judged.")
    incomplete: int = Field(ge=0, description="Of those, instances whose native pixel data are truncated or absent.")

    @model_validator(mode="after")
    def _at_most_judged(self) -> SeriesPixelCheck:
        if self.incomplete > self.images_judged:
            raise ValueError("more instances incomplete than judged")
        return self


class StudyAnonymised(StudyEvent):
    """De-identified instances of the study are stored in the research Orthanc."""

    TOPIC: ClassVar[str] = "eucaim.study.anonymised.v1"
    event_type: Literal["StudyAnonymised"] = "StudyAnonymised"

    research_study_id: str = Field(pattern=ORTHANC_ID, description="Study ID in the research Orthanc.")
    subject_key: str = Field(description="Pseudonymous subject key (the de-identified PatientID).")
    series_count: int = Field(ge=0)
    instance_count: int = Field(ge=0, description="Instances released to the research Orthanc.")
    quarantined_count: int = Field(ge=0, description="Instances held back (see StudyQuarantined).")
    calling_aet: str | None = Field(default=None, max_length=16, pattern=r"^[ -~]*$",
                                    description="AE title of the modality that sent the study (collection rules); a device name, not a person.")
    department: str | None = Field(default=None, max_length=64, pattern=r"^[A-Z0-9 ]*$",
                                   description="InstitutionalDepartmentName of the study, normalised (upper case, "
                                               "letters, digits, spaces), for the screening rules: de-identification "
                                               "removes it from the images. A unit of the hospital, not a person.")
    native_pixels: tuple[SeriesPixelCheck, ...] = Field(
        default=(), description="Per research series whose every released instance has native pixel data "
                                "anonymisation could judge: counts judged and incomplete (metadata then need not "
                                "ask the research Orthanc to decode them). Empty in events of older producers.")

    @field_validator("department", mode="before")
    @classmethod
    def _normalised(cls, value: object) -> str | None:
        """Upper case, every run of other characters one space, at most 64 characters (the rules compare so)."""
        if value is None:
            return None
        return re.sub(r"[^A-Z0-9]+", " ", str(value).upper()).strip()[:64].strip() or None


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
    action: str = Field(pattern=r"^([a-z][a-z0-9-]{1,62}|[A-Z][A-Z_]{1,62})$", description="What was done, e.g. federated-search, catalogue-read, withdrawal, dlq-replay, or an EUCAIM tracing-service action name (CREATE_DATASET, UPDATE_DATASET, USE_DATASETS).")
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


# -- federation and consent withdrawal (issue 4) ---------------------------------------------------------------

SUBJECT_KEY = r"^[A-Za-z0-9-]{1,24}-[0-9a-f]{20}$"


class WithdrawalRequested(Event):
    """A patient withdrew consent (GDPR Art. 17, EHDS opt-out): the subject's data must leave the research side.

    Carries only the subject key (the keyed-HMAC pseudonym of the hospital's patient ID, computed
    by the operator's CLI from the ID typed in); the ID itself is never stored or sent. Permanent:
    studies of this subject that arrive later are never released.
    """

    TOPIC: ClassVar[str] = "eucaim.subject.withdrawal-requested.v1"
    event_type: Literal["WithdrawalRequested"] = "WithdrawalRequested"

    subject_key: str = Field(pattern=SUBJECT_KEY, description="Pseudonymous subject key (the de-identified PatientID).")

    def partition_key(self) -> bytes:
        return self.subject_key.encode()


class StudyWithdrawn(StudyEvent):
    """The de-identified study of a withdrawn subject was deleted from the research Orthanc."""

    TOPIC: ClassVar[str] = "eucaim.study.withdrawn.v1"
    event_type: Literal["StudyWithdrawn"] = "StudyWithdrawn"

    subject_key: str = Field(pattern=SUBJECT_KEY)


class StudyWithheld(StudyEvent):
    """A received study of a withdrawn subject was not released to the research Orthanc."""

    TOPIC: ClassVar[str] = "eucaim.study.withheld.v1"
    event_type: Literal["StudyWithheld"] = "StudyWithheld"

    subject_key: str = Field(pattern=SUBJECT_KEY)
    reason: Literal["consent-withdrawn"] = "consent-withdrawn"


class StudyRemoved(StudyEvent):
    """The study's catalogue documents were removed (its subject withdrew); its collection must be recomputed."""

    TOPIC: ClassVar[str] = "eucaim.study.removed.v1"
    event_type: Literal["StudyRemoved"] = "StudyRemoved"

    subject_key: str = Field(pattern=SUBJECT_KEY)
    collection_id: str
    reason: Literal["consent-withdrawn"] = "consent-withdrawn"


class CollectionPublished(Event):
    """A new version of a collection's HealthDCAT-AP dataset description is served (and queued for the remote catalogue)."""

    TOPIC: ClassVar[str] = "eucaim.collection.published.v1"
    event_type: Literal["CollectionPublished"] = "CollectionPublished"

    collection_id: str
    version: int = Field(ge=1)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    shacl_conforms: bool
    shacl_violations: int = Field(ge=0)

    def partition_key(self) -> bytes:
        return self.collection_id.encode()


class CollectionDelivered(Event):
    """The remote catalogue accepted a version of a collection's dataset description."""

    TOPIC: ClassVar[str] = "eucaim.collection.delivered.v1"
    event_type: Literal["CollectionDelivered"] = "CollectionDelivered"

    collection_id: str
    version: int = Field(ge=1)
    attempts: int = Field(ge=1)
    http_status: int

    def partition_key(self) -> bytes:
        return self.collection_id.encode()


DOMAIN_EVENTS = DOMAIN_EVENTS + (
    WithdrawalRequested,
    StudyWithdrawn,
    StudyWithheld,
    StudyRemoved,
    CollectionPublished,
    CollectionDelivered,
)


# -- Tier 3 datasets (issue 10) ---------------------------------------------------------------------------------

DATASET_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


class DatasetStudy(_Part):
    """One study of a dataset definition: research StudyInstanceUID (the study key), subject key, collection, and
    the research SeriesInstanceUIDs chosen. Pseudonymous identifiers only."""

    study_uid: str = Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)
    subject: str = Field(pattern=SUBJECT_KEY)
    collection_id: str = Field(min_length=1)
    series: tuple[str, ...] = Field(min_length=1)


class DatasetDefinition(_Part):
    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    project: str | None = None
    licence: str | None = None
    purpose: str | None = None
    provenance: str = Field(description="JSON: how the study list was made (the query AST, or an explicit list).")
    studies: tuple[DatasetStudy, ...] = Field(min_length=1)


class DatasetGrantRequest(_Part):
    grant_id: str = Field(pattern=DATASET_ID)
    grantee: str = Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")
    valid_from: datetime
    valid_until: datetime


class DatasetCommand(Event):
    """An operator's act on a Tier 3 dataset, for the materialiser (the datasets' one writer) to apply.

    The materialiser applies each command once (keyed by ``event_id``), records its outcome where the CLI reads
    it, and records the act in the audit log with the EUCAIM action names (CREATE_DATASET, UPDATE_DATASET, ...).
    """

    TOPIC: ClassVar[str] = "eucaim.dataset.command.v1"
    event_type: Literal["DatasetCommand"] = "DatasetCommand"

    command: Literal["define", "release", "publish", "invalidate", "reactivate", "grant", "revoke", "delete"]
    actor: str = Field(min_length=1, description="Who asked: cli:<user>@<host>.")
    dataset_id: str = Field(pattern=DATASET_ID)
    reason: str | None = Field(default=None, max_length=500)
    definition: DatasetDefinition | None = None
    grant: DatasetGrantRequest | None = None
    grant_id: str | None = Field(default=None, pattern=DATASET_ID, description="The grant a revoke closes.")

    def partition_key(self) -> bytes:
        return self.dataset_id.encode()
