"""What the metadata core needs from the world."""

from typing import Any, Protocol

from eucaim_node.events import StudyIndexed


class ResearchArchive(Protocol):
    async def study(self, study_id: str) -> dict[str, Any]: ...
    async def series(self, series_id: str) -> dict[str, Any]: ...
    async def instance_tags(self, instance_id: str) -> dict[str, Any]: ...


class Catalogue(Protocol):
    async def replace_study(self, study: dict[str, Any], series: list[dict[str, Any]]) -> None: ...


class StudyIndexedPublisher(Protocol):
    async def __call__(self, event: StudyIndexed) -> None: ...
