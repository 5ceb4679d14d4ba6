"""Integrity of a materialised dataset: the dataset-service's SHA3-256 aggregates and a BagIt manifest.

Aggregates (dataset_service/hash.py): the series hash is one SHA3-256 over the bytes of every file of the series
directory in sorted name order; the study hash is SHA3-256 over the raw series digests in index order; the dataset
images hash is SHA3-256 over the raw study digests in index order; the index and clinical-data hashes are SHA3-256
of ``index.json`` and ``eforms.json``. Digests are standard base64 of the raw digest.

BagIt (RFC 8493): ``bagit.txt`` (§2.1.1), ``manifest-sha256.txt`` (§2.1.3, one ``<hex>  data/<path>`` line per
payload file), ``bag-info.txt`` (§2.2.2) and ``tagmanifest-sha256.txt`` (§2.2.1). Per-file digests are what let
``verify`` name the first differing file; the aggregates are what EUCAIM's tracer records.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .layout import EFORMS, INDEX, relative_files
from .model import Hashes, StudyHash

CHUNK = 1 << 20
MANIFEST = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
BAGIT_DECLARATION = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _read_into(path: Path, *hashers: Any) -> int:
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            size += len(chunk)
            for h in hashers:
                h.update(chunk)
    return size


def _files_in_upstream_order(directory: Path) -> list[Path]:
    """Files of a directory as upstream hashes them: sorted names, subdirectories recursively in place."""
    result: list[Path] = []
    for name in sorted(os.listdir(directory)):
        path = directory / name
        result.extend(_files_in_upstream_order(path) if path.is_dir() else [path])
    return result


@dataclass(frozen=True)
class Measured:
    hashes: Hashes
    manifest: bytes


def measure(dataset_dir: Path, index: list[dict[str, Any]]) -> Measured:
    """Aggregates and per-file SHA-256 of a dataset directory, read once: what creation records."""
    per_file: dict[str, str] = {}
    total = 0
    study_hashes: list[StudyHash] = []
    images = hashlib.sha3_256()
    for study in index:
        study_sha = hashlib.sha3_256()
        for series in study["series"]:
            series_sha = hashlib.sha3_256()
            for path in _files_in_upstream_order(dataset_dir / study["path"] / series["folderName"]):
                file_sha = hashlib.sha256()
                total += _read_into(path, series_sha, file_sha)
                per_file[path.relative_to(dataset_dir).as_posix()] = file_sha.hexdigest()
            study_sha.update(series_sha.digest())
        study_hashes.append(StudyHash(study_id=study["studyId"], hash=b64(study_sha.digest())))
        images.update(study_sha.digest())
    tops = {}
    for name in (INDEX, EFORMS):
        sha3, sha256 = hashlib.sha3_256(), hashlib.sha256()
        total += _read_into(dataset_dir / name, sha3, sha256)
        per_file[name] = sha256.hexdigest()
        tops[name] = b64(sha3.digest())
    manifest = "".join(f"{per_file[p]}  data/{p}\n" for p in sorted(per_file)).encode("utf-8")
    hashes = Hashes(index=tops[INDEX], images=b64(images.digest()), clinical=tops[EFORMS], studies=tuple(study_hashes),
                    manifest_sha256=hashlib.sha256(manifest).hexdigest(), files=len(per_file), bytes=total)
    return Measured(hashes, manifest)


def write_bag(bag_dir: Path, dataset_dir: Path, measured: Measured, *, dataset_id: str, version: int) -> None:
    """Write a bag into ``bag_dir`` (fresh): tag files, and ``data/`` mirroring ``dataset_dir`` with hard links
    (no copy; a symlinked payload would point outside the bag, which BagIt tools rightly refuse)."""
    bag_dir.mkdir(parents=True)
    for relpath in relative_files(dataset_dir):
        target = bag_dir / "data" / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(dataset_dir / relpath, target)
    info = (f"External-Identifier: {dataset_id}\nBag-Software-Agent: eucaim-node\n"
            f"Bagging-Date: {datetime.now(UTC).date().isoformat()}\n"
            f"Payload-Oxum: {measured.hashes.bytes}.{measured.hashes.files}\n"
            f"Internal-Sender-Description: EUCAIM dataset version {version}\n").encode("utf-8")
    tags = {BAGIT_TXT: BAGIT_DECLARATION, MANIFEST: measured.manifest, BAG_INFO: info}
    for name, data in tags.items():
        (bag_dir / name).write_bytes(data)
    tag_manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(tags.items()))
    (bag_dir / TAG_MANIFEST).write_bytes(tag_manifest.encode("utf-8"))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    #: The first file (relative to the dataset directory, or a bag tag file) that differs, or None.
    first_difference: str | None = None
    detail: str = ""


def _manifest_entries(manifest: bytes) -> list[tuple[str, str]]:
    entries = []
    for line in manifest.decode("utf-8").splitlines():
        digest, _, path = line.partition("  ")
        entries.append((path.removeprefix("data/"), digest))
    return entries


def verify(dataset_dir: Path, bag_dir: Path, recorded: Hashes, index: list[dict[str, Any]] | None = None) -> Verdict:
    """Recompute everything and compare with what creation recorded; name the first file that differs.

    Order: the BagIt manifest against its recorded digest, then every payload file in manifest order (missing,
    changed), then files nobody listed, then the SHA3-256 aggregates (``index`` defaults to the one on disk)."""
    if not dataset_dir.is_dir():
        return Verdict(False, dataset_dir.name, "the dataset directory is missing")
    try:
        manifest = (bag_dir / MANIFEST).read_bytes()
    except OSError:
        return Verdict(False, f"{bag_dir.name}/{MANIFEST}", "the BagIt manifest is missing")
    if hashlib.sha256(manifest).hexdigest() != recorded.manifest_sha256:
        return Verdict(False, f"{bag_dir.name}/{MANIFEST}", "the BagIt manifest differs from the recorded one")
    entries = _manifest_entries(manifest)
    for relpath, digest in entries:
        path = dataset_dir / relpath
        if not path.is_file():
            return Verdict(False, relpath, "missing")
        sha = hashlib.sha256()
        _read_into(path, sha)
        if sha.hexdigest() != digest:
            return Verdict(False, relpath, "content differs (SHA-256)")
    listed = {p for p, _ in entries}
    for relpath in relative_files(dataset_dir):
        if relpath not in listed:
            return Verdict(False, relpath, "not part of the dataset")
    if index is None:
        import json

        index = json.loads((dataset_dir / INDEX).read_bytes())
    again = measure(dataset_dir, index).hashes
    for field, name in (("index", INDEX), ("clinical", EFORMS), ("images", "images (SHA3-256 aggregate)")):
        if getattr(again, field) != getattr(recorded, field):
            return Verdict(False, name, f"the {field} hash differs")
    return Verdict(True, None, f"{recorded.files} files, {recorded.bytes} bytes verified")
