"""What the anonymisation core needs from the world."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from eucaim_node.deid import DeidResult
from eucaim_node.deid.result import QuarantineReason
from eucaim_node.events import QuarantinedInstance, StudyAnonymised, StudyQuarantined, StudyWithdrawn, StudyWithheld
from eucaim_node.orthanc import StoredInstance


class ClinicalArchive(Protocol):
    async def study_instance_ids(self, study_id: str) -> list[str]: ...
    async def calling_aet(self, instance_id: str) -> str | None: ...
    async def department(self, instance_id: str) -> str | None: ...


class ResearchArchive(Protocol):
    async def store(self, data: bytes) -> StoredInstance: ...
    async def delete_study(self, study_id: str) -> None: ...
    async def subject_study_ids(self, subject_key: str) -> list[str]: ...
    async def study_key(self, study_id: str) -> str | None: ...


@dataclass(frozen=True)
class InstanceOutcome:
    """What de-identifying one instance tells the caller: the fields of :class:`DeidResult` the study's path uses
    (never the dataset), plus either where the instance was stored (``stored``) or, when it is released but could
    not be stored yet, its de-identified bytes (``data``). Small and picklable: it crosses the process boundary."""

    released: bool
    reasons: tuple[QuarantineReason, ...] = ()
    replaced: tuple[QuarantineReason, ...] = ()
    study_instance_uid: str | None = None
    patient_pseudonym: str | None = None
    native_pixels_complete: bool | None = None
    data: bytes | None = None
    stored: StoredInstance | None = None

    @classmethod
    def of(cls, result: DeidResult, *, data: bytes | None = None, stored: StoredInstance | None = None) -> InstanceOutcome:
        """The outcome of ``result``: every field of this class that :class:`DeidResult` has is copied from it (a
        field added here is carried through), ``data`` and ``stored`` are the caller's."""
        copied = {f.name: getattr(result, f.name) for f in dataclasses.fields(cls) if f.name not in ("data", "stored")}
        return cls(**copied, data=data, stored=stored)


class DeidentifyInstance(Protocol):
    """Fetch one instance from the clinical archive and de-identify it (off the event loop: in worker processes in
    production, decision 0132). Only if it is released, its de-identified StudyInstanceUID is ``study_key`` and its
    patient pseudonym is ``cleared_subject`` (a subject the caller has checked is not withdrawn) is it also stored
    in the research archive (``stored``); a released instance of any other subject comes back with its bytes
    (``data``), for the caller to check and store. None: the instance is no longer in the clinical archive."""

    async def __call__(self, instance_id: str, *, study_key: str, cleared_subject: str | None) -> InstanceOutcome | None: ...


class QuarantineLog(Protocol):
    async def record(self, study_key: str, instance: QuarantinedInstance, event_id: str) -> None: ...


class Withdrawals(Protocol):
    async def record(self, subject_key: str, event_id: str) -> None: ...
    async def is_withdrawn(self, subject_key: str) -> bool: ...


class Publishers(Protocol):
    async def anonymised(self, event: StudyAnonymised) -> None: ...
    async def quarantined(self, event: StudyQuarantined) -> None: ...
    async def withheld(self, event: StudyWithheld) -> None: ...
    async def withdrawn(self, event: StudyWithdrawn) -> None: ...
