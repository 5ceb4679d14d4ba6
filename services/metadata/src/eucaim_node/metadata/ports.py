"""What the metadata core needs from the world."""

from datetime import datetime
from typing import Any, Protocol

from eucaim_node.catalogue.documents import RemovedStudy, SeriesDocument, StudyDocument
from eucaim_node.events import StudyIndexed, StudyRemoved


class ResearchArchive(Protocol):
    async def study(self, study_id: str) -> dict[str, Any]: ...
    async def series(self, series_id: str) -> dict[str, Any]: ...
    async def instance_tags(self, instance_id: str) -> dict[str, Any]: ...

    async def series_instances_tags(self, series_id: str) -> dict[str, dict[str, Any]]:
        """Every instance's tags by keyword, keyed by instance ID."""

    async def decodes(self, instance_id: str) -> bool:
        """Whether the archive can decode the instance's pixel data."""


class CatalogueWriter(Protocol):
    """The catalogue's one writer (``eucaim_node.catalogue.documents`` is the contract its readers rely on)."""

    async def replace_study(self, study: StudyDocument, series: list[SeriesDocument]) -> None: ...

    async def refresh_subject(self, subject_key: str, changed_study: str | None = None) -> None:
        """Make the subject document equal to what its studies say (delete it when none is left); ``changed_study``
        is the study just written or removed."""

    async def record_withdrawal(self, subject_key: str, at: datetime, event_id: str) -> None: ...
    async def is_withdrawn(self, subject_key: str) -> bool: ...

    async def studies_of(self, subject_key: str) -> list[StudyDocument]: ...

    async def remove_study(self, study: StudyDocument, at: datetime) -> None:
        """Tombstone (study key, collection, subject, time) first, then delete the series and the study."""

    async def removed_studies_of(self, subject_key: str) -> list[RemovedStudy]:
        """The tombstones of this subject's removed studies."""


class StudyIndexedPublisher(Protocol):
    async def __call__(self, event: StudyIndexed) -> None: ...


class StudyRemovedPublisher(Protocol):
    async def __call__(self, event: StudyRemoved) -> None: ...
