"""A Tier 3 dataset: a frozen list of research studies and series, versioned, with its state and integrity record.

Field meanings follow the CHAIMELEON/EUCAIM dataset-service (README "Dataset states", RESTServer.py): creation
runs asynchronously (pending, running, error with a reason); a dataset is a draft, then released, then published;
invalidation carries a reason and can be reversed by an operator; versions link by ``previous_id``/``next_id``,
one successor each. Identifiers are pseudonymous only: research StudyInstanceUIDs (the study keys, decision 0006),
research SeriesInstanceUIDs and subject keys (the de-identified PatientID); never an original identifier.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

#: A DICOM UID (PS3.5 §9.1): digits and dots, at most 64 characters. Safe as a directory name.
UID = r"^[0-9]+(\.[0-9]+)*$"
#: A subject key as the node writes it (``SITE-<20 hex>``, see eucaim_node.events.SUBJECT_KEY). Safe as a directory.
SUBJECT = r"^[A-Za-z0-9-]{1,24}-[0-9a-f]{20}$"
#: Dataset IDs are UUID v4, as upstream (the directory name of the dataset).
DATASET_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def new_dataset_id() -> str:
    return str(uuid.uuid4())


def is_dataset_id(value: str) -> bool:
    return bool(DATASET_ID.match(value))


def now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """MongoDB stores UTC without the zone; a client that is not tz_aware reads naive datetimes back."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


#: A datetime in UTC, whatever the MongoDB client's tz_aware setting.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StudyRef(_Frozen):
    """One study of a dataset, frozen at definition time: its research UID, subject, collection and chosen series."""

    study_uid: str = Field(pattern=UID, max_length=64)
    subject: str = Field(pattern=SUBJECT)
    collection_id: str = Field(min_length=1)
    series: tuple[str, ...] = Field(min_length=1)

    @field_validator("series")
    @classmethod
    def _series_uids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for uid in value:
            if not re.match(UID, uid) or len(uid) > 64:
                raise ValueError(f"{uid!r} is not a DICOM UID")
        if len(set(value)) != len(value):
            raise ValueError("a series is listed twice")
        return tuple(sorted(value))


class State(StrEnum):
    """The dataset's publication state (upstream flags draft / public)."""

    DRAFT = "draft"
    RELEASED = "released"
    PUBLISHED = "published"


class Creation(StrEnum):
    """Where materialisation stands (upstream creation status)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"


class StudyHash(_Frozen):
    """One study's SHA3-256 (upstream records a list of ``{studyId, hash}``; UIDs contain dots, so never keys)."""

    study_id: str
    hash: str


class Hashes(_Frozen):
    """The dataset-service's integrity aggregates (SHA3-256, standard base64), plus the BagIt manifest's SHA-256.

    ``studies`` lists each study's hash in index order; ``manifest_sha256`` (hex) pins the
    BagIt payload manifest, whose per-file lines name the first differing file on verification."""

    index: str
    images: str
    clinical: str
    studies: tuple[StudyHash, ...]
    manifest_sha256: str
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)


class Dataset(BaseModel):
    """One version of a dataset, as stored (MongoDB ``datasets``, ``_id`` = ``id``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    project: str | None = None
    licence: str | None = None
    purpose: str | None = None
    author: str
    created_at: UtcDatetime = Field(default_factory=now)
    #: How the study list was made: ``{"kind": "query", "ast": ...}`` or ``{"kind": "studies"}``; kept as provenance.
    provenance: dict[str, Any]
    studies: tuple[StudyRef, ...] = Field(min_length=1)
    version: int = Field(default=1, ge=1)
    previous_id: str | None = None
    next_id: str | None = None
    state: State = State.DRAFT
    invalidated: bool = False
    invalidation_reason: str | None = None
    creation: Creation = Creation.PENDING
    creation_error: str | None = None
    hashes: Hashes | None = None
    materialised_at: UtcDatetime | None = None
    released_at: UtcDatetime | None = None
    published_at: UtcDatetime | None = None
    #: Set when an operator deleted the dataset; the materialiser then removes its files.
    deleted: bool = False
    #: The event ID of the last operator command applied (a redelivered command is recognised as applied).
    last_command: str | None = None

    @field_validator("studies")
    @classmethod
    def _unique_studies(cls, value: tuple[StudyRef, ...]) -> tuple[StudyRef, ...]:
        if len({s.study_uid for s in value}) != len(value):
            raise ValueError("a study is listed twice")
        return value

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({s.subject for s in self.studies}))

    @property
    def collections(self) -> tuple[str, ...]:
        return tuple(sorted({s.collection_id for s in self.studies}))

    @property
    def usable(self) -> bool:
        """Materialised, not invalidated, not deleted: what a job may mount."""
        return self.creation is Creation.DONE and not self.invalidated and not self.deleted

    def to_document(self) -> dict[str, Any]:
        """The stored form; ``subjects`` is denormalised so a withdrawal finds the versions by one array match."""
        doc = self.model_dump(mode="python")
        doc["_id"] = doc.pop("id")
        doc["subjects"] = list(self.subjects)
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Dataset:
        data = dict(doc)
        data["id"] = data.pop("_id")
        data.pop("subjects", None)
        return cls.model_validate(data)


class Grant(BaseModel):
    """Who may use which dataset from when until when, granted by whom; closed early by ``closed_at``.

    ``grantee`` is a user (``alice``) or a project (``project:NAME``), as upstream's access list and project rule."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    dataset_id: str
    grantee: str = Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    granted_by: str
    granted_at: UtcDatetime = Field(default_factory=now)
    closed_at: UtcDatetime | None = None
    closed_by: str | None = None

    def open_at(self, when: datetime) -> bool:
        """Open at ``when``: not closed (or closed later), and ``valid_from <= when < valid_until``."""
        if self.closed_at is not None and self.closed_at <= when:
            return False
        return self.valid_from <= when < self.valid_until

    def to_document(self) -> dict[str, Any]:
        doc = self.model_dump(mode="python")
        doc["_id"] = doc.pop("id")
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Grant:
        data = dict(doc)
        data["id"] = data.pop("_id")
        return cls.model_validate(data)
