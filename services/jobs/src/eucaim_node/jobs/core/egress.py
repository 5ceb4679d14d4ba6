"""Egress review: what a job wrote stays in its sandbox until a data holder releases it, file by file.

EHDS (Regulation (EU) 2025/327) recital 77 and article 73: only non-personal data may leave a secure processing
environment. The node cannot prove a file is non-personal; it finds what commonly makes one personal and shows it
to the reviewer, who decides. Automatic findings (each ``{"kind", "detail"}``):

- ``dicom``: a DICOM file (PS3.10 §7.1: ``DICM`` after a 128-byte preamble) or a ``.dcm`` name;
- ``image``: a raster or volume image (PNG, JPEG, GIF, TIFF, BMP, NIfTI-1/2, NRRD, MetaImage) by content or name;
- ``type``: a file name whose extension is not in the allow-list; ``binary``: not UTF-8 text (cannot be scanned);
- ``size``: larger than the allowed size;
- ``phi-pattern``: a value that looks like a date, a DICOM person name (``FAMILY^GIVEN``), an e-mail address, a
  telephone number or a DICOM UID;
- ``subject-identifier``: any identifier of the dataset's subjects or studies (``index.json``: ``subjectName``,
  ``studyId``, ``studyName``, the study and series directory names; ``eforms.json``: ``subjectName``), which are
  pseudonyms: a pseudonym links a result to a person as well as a name does;
- ``small-cell``: a table (CSV/TSV) or JSON count of people (a column or key named like n, count, subjects,
  patients, persons, cases, studies) between 1 and the small-cell minimum minus one.

The job's log is reviewed the same way, as the output :data:`LOG_NAME`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

LOG_NAME = "job.log"
#: Largest file the scanner reads whole; larger files are reported with a ``size`` finding and not scanned.
SCAN_LIMIT = 64 * 1024 * 1024

_IMAGE_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (0, b"GIF8", "GIF"), (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"), (0, b"BM", "BMP"), (344, b"n+1\x00", "NIfTI-1"), (344, b"ni1\x00", "NIfTI-1"),
    (4, b"n+2\x00", "NIfTI-2"), (0, b"NRRD", "NRRD"), (0, b"ObjectType = Image", "MetaImage"),
)
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".nii", ".nii.gz", ".nrrd",
                             ".mha", ".mhd", ".img", ".hdr", ".dcm"})

_PHI_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b"
                        r"|\b(?:0[1-9]|[12]\d|3[01])[./](?:0[1-9]|1[0-2])[./](?:19|20)\d{2}\b"
                        r"|\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b")),
    ("person-name", re.compile(r"\b[A-Za-z][A-Za-z'-]+\^[A-Za-z][A-Za-z'-]*")),
    ("e-mail", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")),
    ("telephone", re.compile(r"(?<![\w.])\+?\d{1,3}[ -]?\(?\d{2,4}\)?[ -]\d{3,4}[ -]?\d{3,4}(?![\w.])")),
    ("dicom-uid", re.compile(r"\b[12]\.\d+(?:\.\d+){4,}\b")),
)
#: A column or key that counts people (a small cell is about people, not images or voxels).
_PEOPLE_COUNT = re.compile(r"^(?:n|count|num|number)?_?(?:n|count|subjects?|patients?|persons?|people|cases?|studies)"
                           r"(?:_?(?:n|count))?$", re.IGNORECASE)


@dataclass(frozen=True)
class ReviewRules:
    allowed_suffixes: frozenset[str]
    max_bytes: int
    small_cell_minimum: int


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def subject_identifiers(dataset_dir: Path) -> frozenset[str]:
    """Every identifier of the dataset's subjects and studies (pseudonyms included) that its index files name."""
    found: set[str] = set()
    for name in ("index.json", "eforms.json"):
        try:
            entries = json.loads((dataset_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            for key in ("subjectName", "studyId", "studyName"):
                if isinstance(entry.get(key), str):
                    found.add(entry[key])
            if isinstance(entry.get("path"), str):
                found.update(PurePosixPath(entry["path"]).parts)
            for series in entry.get("series") or []:
                folder = series.get("folderName") if isinstance(series, dict) else series
                if isinstance(folder, str):
                    found.add(folder)
    # Short values ("1", "CT") would match everywhere and mean nothing: identifiers are long.
    return frozenset(v for v in found if len(v) >= 6)


def _suffix(name: str) -> str:
    lower = name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else PurePosixPath(lower).suffix


def _content_findings(name: str, head: bytes) -> list[Finding]:
    findings = []
    if head[128:132] == b"DICM" or _suffix(name) == ".dcm":
        findings.append(Finding("dicom", "a DICOM file (PS3.10 preamble and DICM prefix, or .dcm)"))
    for offset, magic, kind in _IMAGE_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            findings.append(Finding("image", f"{kind} image content"))
            break
    else:
        if _suffix(name) in _IMAGE_SUFFIXES and _suffix(name) != ".dcm":
            findings.append(Finding("image", f"an image file name ({_suffix(name)})"))
    return findings


def _text_findings(text: str, identifiers: frozenset[str]) -> list[Finding]:
    findings = []
    for kind, pattern in _PHI_PATTERNS:
        match = pattern.search(text)
        if match:
            findings.append(Finding("phi-pattern", f"{kind} at character {match.start()}"))
    hits = sorted(i for i in identifiers if i in text)
    if hits:
        # Never repeat the identifier itself: the finding list is shown and logged.
        findings.append(Finding("subject-identifier", f"{len(hits)} identifier(s) of the dataset's subjects or studies"))
    return findings


def _small_cells_in_rows(rows: Iterable[dict[str, Any]], minimum: int) -> list[str]:
    cells = []
    for number, row in enumerate(rows, 1):
        for key, value in row.items():
            if key is None or not _PEOPLE_COUNT.match(str(key).strip()):
                continue
            try:
                count = float(str(value).strip())
            except ValueError:
                continue
            if 0 < count < minimum:
                cells.append(f"row {number} {str(key).strip()}")
    return cells


def _json_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _json_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_objects(item)


def _small_cell_findings(name: str, text: str, minimum: int) -> list[Finding]:
    suffix = _suffix(name)
    cells: list[str] = []
    if suffix in (".csv", ".tsv"):
        try:
            cells = _small_cells_in_rows(csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ","),
                                         minimum)
        except csv.Error:
            cells = []
    elif suffix == ".json":
        try:
            cells = _small_cells_in_rows(_json_objects(json.loads(text)), minimum)
        except ValueError:
            cells = []
    if not cells:
        return []
    return [Finding("small-cell", f"{len(cells)} count(s) of people under {minimum} (first: {cells[0]})")]


def scan_file(path: Path, name: str, rules: ReviewRules, identifiers: frozenset[str]) -> list[Finding]:
    """The findings of one output file (``name``: its path relative to the sandbox, or :data:`LOG_NAME`)."""
    if path.is_symlink() or not path.is_file():
        return [Finding("type", "not a regular file (a link or a special file): never released")]
    size = path.stat().st_size
    findings: list[Finding] = []
    if name != LOG_NAME and _suffix(name) not in rules.allowed_suffixes:
        findings.append(Finding("type", f"extension {_suffix(name) or '(none)'!r} is not in the allow-list"))
    if size > rules.max_bytes:
        findings.append(Finding("size", f"{size} bytes, more than {rules.max_bytes}"))
    if size > SCAN_LIMIT:
        return findings
    data = path.read_bytes()
    findings += _content_findings(name, data[:512])
    try:
        text = data.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", data, text.index("\x00"), text.index("\x00") + 1, "NUL")
    except UnicodeDecodeError:
        findings.append(Finding("binary", "not UTF-8 text: its content cannot be checked"))
        return findings
    findings += _text_findings(text, identifiers)
    findings += _small_cell_findings(name, text, rules.small_cell_minimum)
    return findings


def list_outputs(sandbox: Path) -> list[tuple[str, Path]]:
    """(name relative to the sandbox, path) of every entry a job left there that is not a directory."""
    outputs = []
    for path in sorted(sandbox.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        outputs.append((path.relative_to(sandbox).as_posix(), path))
    return outputs


def scan_outputs(sandbox: Path, log: Path, rules: ReviewRules, identifiers: frozenset[str],
                 max_files: int = 1000) -> dict[str, dict[str, Any]]:
    """The review record of every output: size, SHA-256, findings, and the decision (pending until a reviewer acts).

    Keys are the names, with ``.`` replaced (MongoDB field names): the record keeps the real ``name``.
    """
    records: dict[str, dict[str, Any]] = {}
    entries = list_outputs(sandbox) if sandbox.is_dir() else []
    if log.is_file():
        entries.append((LOG_NAME, log))
    for name, path in entries[:max_files]:
        findings = scan_file(path, name, rules, identifiers)
        regular = path.is_file() and not path.is_symlink()
        records[output_key(name)] = {
            "name": name, "size": path.stat().st_size if regular else None,
            "sha256": sha256_file(path) if regular else None,
            "findings": [f.to_dict() for f in findings], "decision": "pending"}
    if len(entries) > max_files:
        records["(more)"] = {"name": "(more)", "size": None, "sha256": None, "decision": "rejected",
                             "findings": [{"kind": "type", "detail": f"{len(entries) - max_files} more files not listed"}]}
    return records


def output_key(name: str) -> str:
    """A MongoDB field name for an output (no ``.`` nor a leading ``$``); reversible enough to be unique."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]
