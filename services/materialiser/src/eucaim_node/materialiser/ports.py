"""What the materialiser's core needs besides the dataset store (eucaim_node.datasets.ports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ImageSource(Protocol):
    """The research Orthanc, read-only: where a dataset's files come from (and nowhere else)."""

    async def study_id(self, study_uid: str) -> str | None: ...

    async def series_instances(self, orthanc_study_id: str) -> dict[str, list[tuple[str, str]]]:
        """SeriesInstanceUID → [(Orthanc instance ID, SOPInstanceUID)] of one study."""
        ...

    async def fetch(self, instance_id: str, target: Path) -> None:
        """Write the instance's Part-10 file to ``target`` (complete, or not at all)."""
        ...


class ClinicalData(Protocol):
    async def eforms(self, subjects: list[str]) -> dict[str, dict[str, Any]]:
        """subject key → its de-identified clinical data (catalogue subject and studies)."""
        ...


class Outcomes(Protocol):
    async def get(self, command_id: str) -> dict[str, Any] | None: ...

    async def record(self, command_id: str, *, ok: bool, message: str, dataset_id: str) -> None: ...
