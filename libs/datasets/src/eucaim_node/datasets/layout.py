"""Where a dataset lives on disk and what its ``index.json`` and ``eforms.json`` say.

Layout of the dataset-service (dataset_service/dataset.py, dataset_creation_worker.py, index.schema.json,
eforms.schema.json), with real files instead of absolute symlinks into a datalake, so a job needs only the
dataset mounted::

    <root>/<dataset-id>/index.json
    <root>/<dataset-id>/eforms.json
    <root>/<dataset-id>/<subject>/<study UID>/<series UID>/<SOPInstanceUID>.dcm

Work in progress lives in ``<root>/.staging/<dataset-id>/`` and is renamed into place when complete; the BagIt
bag of a dataset is ``<root>/.bagit/<dataset-id>/`` whose ``data`` is a relative symlink to the dataset directory
(BagIt wants its payload under ``data/``; the EUCAIM layout wants ``index.json`` at the top, so the tag files
sit beside the dataset, not in it). Names are UIDs and subject keys (validated patterns): no path can escape.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .model import Dataset, StudyRef, is_dataset_id

INDEX = "index.json"
EFORMS = "eforms.json"
STAGING = ".staging"
BAGS = ".bagit"
#: Upstream walks only files ending ``.dcm``.
DICOM_SUFFIX = ".dcm"


class DatasetRoot:
    """The dataset root directory and the paths under it."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _checked(self, dataset_id: str) -> str:
        if not is_dataset_id(dataset_id):
            raise ValueError(f"{dataset_id!r} is not a dataset ID (a UUID v4)")
        return dataset_id

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.root / self._checked(dataset_id)

    def staging_dir(self, dataset_id: str) -> Path:
        return self.root / STAGING / self._checked(dataset_id)

    def bag_dir(self, dataset_id: str) -> Path:
        return self.root / BAGS / self._checked(dataset_id)


def study_path(study: StudyRef) -> str:
    """The study directory relative to the dataset directory (index.json ``path``)."""
    return f"{study.subject}/{study.study_uid}"


def instance_relpath(study: StudyRef, series_uid: str, sop_instance_uid: str) -> str:
    return f"{study_path(study)}/{series_uid}/{sop_instance_uid}{DICOM_SUFFIX}"


def study_url(study: StudyRef) -> str:
    """A URI naming the study (index.json ``url`` is a required URI upstream): the UID as an OID URN (RFC 3061)."""
    return f"urn:oid:{study.study_uid}"


def index_entries(dataset: Dataset) -> list[dict[str, Any]]:
    """One object per study, in the dataset's order: the fields index.schema.json requires (studyId, studyName,
    subjectName, path, url) and ``series`` as the creation worker writes it (``{folderName, tags}``)."""
    return [{
        "studyId": study.study_uid,
        "studyName": study.study_uid,
        "subjectName": study.subject,
        "path": study_path(study),
        "series": [{"folderName": uid, "tags": []} for uid in study.series],
        "url": study_url(study),
    } for study in dataset.studies]


def eforms_entries(dataset: Dataset, eforms: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One object per subject (eforms.schema.json: ``subjectName``, ``eForm``); the eForm holds the catalogue's
    de-identified clinical data of that subject (an empty object if there is none)."""
    return [{"subjectName": subject, "eForm": dict(eforms.get(subject, {}))} for subject in dataset.subjects]


def dump_json(value: Any) -> bytes:
    """Canonical bytes (sorted keys, UTF-8, newline): the same content always hashes the same."""
    return (json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write to ``<name>.part`` then rename: a file with its final name is always complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as handle:
        handle.write(data)
    os.replace(part, path)


def make_read_only(top: Path) -> None:
    """Files 0444, directories 0555 (nobody writes a materialised dataset, its owner included)."""
    for directory, _, files in os.walk(top):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o444)
        os.chmod(directory, 0o555)


def make_writable(top: Path) -> None:
    for directory, _, files in os.walk(top):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def remove_tree(top: Path) -> None:
    """Remove a (possibly read-only) tree; nothing if it is not there."""
    if top.is_symlink():
        top.unlink()
        return
    if not top.exists():
        return
    for directory, _, _ in os.walk(top):
        os.chmod(directory, stat.S_IRWXU)
    shutil.rmtree(top)


def relative_files(top: Path) -> Iterable[str]:
    """Every regular file under ``top``, as sorted POSIX paths relative to it."""
    found = []
    for directory, dirs, files in os.walk(top):
        dirs.sort()
        for name in files:
            found.append(os.path.relpath(os.path.join(directory, name), top).replace(os.sep, "/"))
    return sorted(found)
