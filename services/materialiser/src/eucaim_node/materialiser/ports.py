"""What the materialiser's core needs besides the dataset store (eucaim_node.datasets.ports)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class SourceMismatch(LookupError):
    """The research Orthanc no longer holds what the dataset froze (a study, series or instance is gone)."""


class ArchiveUnusable(ValueError):
    """A series archive could not be read or did not hold what it should (truncated, corrupt, too large, forged):
    nothing of it was kept under a final name; the caller fetches the instances one by one instead."""


@dataclass(frozen=True)
class SourceSeries:
    """One series of a study in the research Orthanc."""

    orthanc_id: str
    #: (Orthanc instance ID, SOPInstanceUID) of every instance.
    instances: tuple[tuple[str, str], ...]
    #: SOPInstanceUID → size in bytes of the stored file, as Orthanc lists it (``FileSize``), where known.
    file_sizes: Mapping[str, int] = field(default_factory=dict)


class ImageSource(Protocol):
    """The research Orthanc, read-only: where a dataset's files come from (and nowhere else)."""

    async def study_id(self, study_uid: str) -> str | None: ...

    async def series_instances(self, orthanc_study_id: str) -> dict[str, SourceSeries]:
        """SeriesInstanceUID → the series' Orthanc ID and instances, of one study."""
        ...

    async def fetch(self, instance_id: str, target: Path) -> None:
        """Write the instance's Part-10 file to ``target`` (complete, or not at all); :class:`SourceMismatch` if
        the instance is gone."""
        ...

    async def fetch_series(self, series: SourceSeries, series_uid: str, targets: Mapping[str, Path]) -> None:
        """Write the series' files, in one request, to ``targets[SOPInstanceUID]`` (each complete, or not at all).
        A file the archive lacks is simply not written (the caller fetches what is missing); an unreadable archive
        raises :class:`ArchiveUnusable`."""
        ...


class ClinicalData(Protocol):
    async def eforms(self, subjects: list[str]) -> dict[str, dict[str, Any]]:
        """subject key → its de-identified clinical data (catalogue subject and studies)."""
        ...


class Outcomes(Protocol):
    async def get(self, command_id: str) -> dict[str, Any] | None: ...

    async def record(self, command_id: str, *, ok: bool, message: str, dataset_id: str) -> None: ...
