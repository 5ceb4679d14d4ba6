"""The research Orthanc as the dataset's only image source (REST present in Orthanc 1.10 and 1.12)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eucaim_node.datasets.layout import write_file_atomically
from eucaim_node.orthanc import OrthancClient


class ResearchOrthancSource:
    def __init__(self, client: OrthancClient) -> None:
        self._client = client

    async def study_id(self, study_uid: str) -> str | None:
        return await self._client.find_study(study_uid)

    async def series_instances(self, orthanc_study_id: str) -> dict[str, list[tuple[str, str]]]:
        """``/studies/{id}/series`` (SeriesInstanceUID per Orthanc series) and ``/studies/{id}/instances``
        (SOPInstanceUID and parent series per instance): two requests per study."""
        series = await self._client.get_json(f"studies/{orthanc_study_id}/series")
        instances = await self._client.get_json(f"studies/{orthanc_study_id}/instances")
        uid_of = {s["ID"]: s["MainDicomTags"]["SeriesInstanceUID"] for s in series}
        found: dict[str, list[tuple[str, str]]] = {}
        for instance in instances:
            series_uid = uid_of.get(instance["ParentSeries"])
            sop_uid = instance.get("MainDicomTags", {}).get("SOPInstanceUID")
            if series_uid and sop_uid:
                found.setdefault(series_uid, []).append((instance["ID"], sop_uid))
        return found

    async def fetch(self, instance_id: str, target: Path) -> None:
        data = await self._client.instance_file(instance_id)
        await asyncio.to_thread(write_file_atomically, target, data)
