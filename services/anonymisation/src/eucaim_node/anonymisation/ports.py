"""What the anonymisation core needs from the world."""

from typing import Protocol

from eucaim_node.deid import DeidResult
from eucaim_node.events import QuarantinedInstance, StudyAnonymised, StudyQuarantined
from eucaim_node.orthanc import StoredInstance


class ClinicalArchive(Protocol):
    async def study_instance_ids(self, study_id: str) -> list[str]: ...
    async def instance_file(self, instance_id: str) -> bytes: ...


class ResearchArchive(Protocol):
    async def store(self, data: bytes) -> StoredInstance: ...


class Deidentify(Protocol):
    def __call__(self, data: bytes) -> DeidResult: ...


class QuarantineLog(Protocol):
    async def record(self, study_key: str, instance: QuarantinedInstance, event_id: str) -> None: ...


class Publishers(Protocol):
    async def anonymised(self, event: StudyAnonymised) -> None: ...
    async def quarantined(self, event: StudyQuarantined) -> None: ...
