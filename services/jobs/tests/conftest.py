"""A small materialised dataset on disk (NOTES.md "Dataset on disk") and fakes of the job core's ports."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from eucaim_node.jobs.core.model import Job
from eucaim_node.jobs.ports import DuplicateJob, UnknownDataset

DATASET_ID = "0b6cf3a1-1d0e-4c55-9a57-0c0f9f6a7e21"
SUBJECT = "EUCAIM-LOCAL-7f3a9c2e41b05d8e6a1f"


def write_ct(path: Path, value: int, slope: float = 1.0, intercept: float = -1024.0) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = np.full((4, 4), value, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_dataset(root: Path, dataset_id: str = DATASET_ID) -> Path:
    directory = root / dataset_id
    series = directory / SUBJECT / "study-1" / "series-ct"
    series.mkdir(parents=True)
    for number, value in enumerate((1000, 1100), 1):
        write_ct(series / f"{number}.dcm", value)
    index = [{"studyId": "1.2.826.0.1.3680043.8.498.1", "studyName": "study-1", "subjectName": SUBJECT,
              "path": f"{SUBJECT}/study-1", "series": [{"folderName": "series-ct", "tags": []}], "url": ""}]
    (directory / "index.json").write_text(json.dumps(index))
    (directory / "eforms.json").write_text(json.dumps([{"subjectName": SUBJECT, "eForm": {}}]))
    for path in sorted(directory.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    directory.chmod(0o555)
    return directory


class FakeDatasets:
    def __init__(self, paths: dict[str, Path], grants: set[tuple[str, str]]) -> None:
        self.paths, self.grants = paths, grants

    async def resolve(self, dataset_id: str) -> Path:
        if dataset_id not in self.paths:
            raise UnknownDataset(dataset_id)
        return self.paths[dataset_id]

    async def holds_open_grant(self, principal: str, dataset_id: str) -> bool:
        return (principal, dataset_id) in self.grants


class MemoryStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def insert(self, job: Job) -> None:
        if any(d["owner"] == job.owner and d["name"] == job.name for d in self.docs.values()):
            raise DuplicateJob(job.name)
        self.docs[job.uid] = job.to_document()

    async def save(self, job: Job) -> None:
        self.docs[job.uid] = job.to_document()

    async def by_name(self, owner: str, name: str) -> Job | None:
        for doc in self.docs.values():
            if doc["owner"] == owner and doc["name"] == name:
                return Job.from_document(doc)
        return None

    async def by_uid(self, uid: str) -> Job | None:
        return Job.from_document(self.docs[uid]) if uid in self.docs else None

    async def unfinished(self) -> list[Job]:
        return [Job.from_document(d) for d in self.docs.values()
                if d["state"] not in ("SUCCESS", "ERROR", "PENDING_ERROR")]

    async def recent(self, limit: int, owner: str | None = None) -> list[Job]:
        jobs = [Job.from_document(d) for d in self.docs.values() if owner is None or d["owner"] == owner]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)[:limit]


class Records(list):
    async def __call__(self, **record: Any) -> None:
        self.append(record)

    def actions(self) -> list[tuple[str, str]]:
        return [(r["action"], r["outcome"]) for r in self]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "datasets")


@pytest.fixture
def new_id() -> str:
    return str(uuid.uuid4())
