"""``eucaim-node deid``: de-identify a folder of DICOM files for data managers.

    eucaim-node deid SRC DST --key-file KEY --quarantine QDIR [--profile NAME] [--option OPTION ...]

Walks SRC recursively. Released instances are written under DST as
``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` (the new,
pseudonymised UIDs: output paths never carry original file names). Every input
that is not released (quarantined, not DICOM, unreadable) is copied under QDIR
at its path relative to SRC and listed in ``QDIR/quarantine-report.json`` with
the reasons (code, element, rule, message — never the identifying value).

Exit codes: 0 the run completed (even if inputs were quarantined or not DICOM);
2 the key file is missing, unreadable or shorter than 32 bytes; 3 SRC cannot be
read; 4 DST or QDIR cannot be written; 5 bad profile or option. ``--jobs N`` spreads
the files over N worker processes (the report keeps input order).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from eucaim_node.deid import Deidentifier, KeyFileError, Profile, load_key, profile_named
from eucaim_node.deid.result import DeidResult, QuarantineReason
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

EXIT_OK = 0
EXIT_KEY = 2
EXIT_SOURCE = 3
EXIT_OUTPUT = 4
EXIT_PROFILE = 5
REPORT_NAME = "quarantine-report.json"
REPORT_VERSION = 1


@dataclass
class RunSummary:
    """Counts for the closing summary and the report."""

    total: int = 0
    released: int = 0
    quarantined: int = 0
    duplicates: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    studies: set[str] = field(default_factory=set)
    items: list[dict[str, object]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        if outcome.released:
            self.released += 1
            self.duplicates += outcome.duplicate
            self.studies.add(str(outcome.study))
            return
        self.quarantined += 1
        for code in outcome.codes:
            self.by_code[code] += 1
        if outcome.item is not None:
            self.items.append(outcome.item)


def _fail(console: Console, code: int, message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _parse_options(values: list[str]) -> tuple[str, ...]:
    """``--option a --option b`` and ``--option a,b`` both work."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _iter_files(src: Path, skip: tuple[Path, ...]) -> list[Path]:
    """Every regular file under `src` (or `src` itself), sorted, outside `skip`."""
    if src.is_file():
        return [src]
    files: list[Path] = []
    for root, dirs, names in os.walk(src, onerror=_raise):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if (root_path / d).resolve() not in skip)
        files.extend(root_path / name for name in sorted(names) if (root_path / name).is_file())
    return files


def _raise(error: OSError) -> None:
    raise error


def _relative(path: Path, src: Path) -> Path:
    return Path(path.name) if src.is_file() else path.relative_to(src)


def _write_released(dst: Path, result: DeidResult) -> bool:
    """Write one released instance; False if that SOP Instance UID was already written."""
    target = dst / str(result.study_instance_uid) / str(result.series_instance_uid)
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"{result.sop_instance_uid}.dcm"
    existed = out.exists()
    tmp = out.with_suffix(".dcm.part")
    tmp.write_bytes(result.data or b"")
    tmp.replace(out)
    return not existed


def _quarantine(qdir: Path, source: Path, relative: Path) -> Path | None:
    target = qdir / "files" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(source, target)
    except OSError:
        return None
    return target


def _report_item(
    relative: Path, copy: Path | None, qdir: Path, result: DeidResult | None, reasons: tuple[QuarantineReason, ...]
) -> dict[str, object]:
    return {
        "source": str(relative),
        "quarantined_copy": str(copy.relative_to(qdir)) if copy else None,
        "study_key": result.study_instance_uid if result else None,
        "sop_class_uid": result.sop_class_uid if result else None,
        "modality": result.modality if result else None,
        "reasons": [r.as_dict() for r in reasons],
    }


def _write_report(qdir: Path, summary: RunSummary, profile: Profile, started: float) -> Path:
    report = {
        "version": REPORT_VERSION,
        "profile": profile.name,
        "options": sorted(o.cli_name for o in profile.options),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "summary": {
            "inputs": summary.total,
            "released": summary.released,
            "quarantined": summary.quarantined,
            "by_code": dict(sorted(summary.by_code.items())),
            "studies_released": len(summary.studies),
            "duplicate_instances": summary.duplicates,
        },
        "items": summary.items,
    }
    path = qdir / REPORT_NAME
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def _summary_table(summary: RunSummary, elapsed: float, dst: Path, report: Path) -> Table:
    table = Table(title="de-identification summary", show_header=False)
    table.add_row("inputs", str(summary.total))
    table.add_row("released", f"{summary.released} ({len(summary.studies)} studies) → {dst}")
    table.add_row("quarantined", f"{summary.quarantined} → {report}")
    if summary.duplicates:
        table.add_row("duplicates", f"{summary.duplicates} (same SOP Instance UID; written once)")
    for code, count in sorted(summary.by_code.items()):
        table.add_row(f"  {code}", str(count))
    rate = summary.total / elapsed if elapsed > 0 else 0.0
    table.add_row("time", f"{elapsed:.1f} s ({rate:.1f} files/s)")
    return table


def deid(
    src: Annotated[Path, typer.Argument(help="Folder (or file) of identifiable DICOM files, walked recursively.")],
    dst: Annotated[Path, typer.Argument(help="Where de-identified instances are written.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="File holding the node key (>= 32 bytes).")],
    quarantine: Annotated[
        Path, typer.Option("--quarantine", help="Where inputs not released are copied, with a report.")
    ],
    profile: Annotated[
        str, typer.Option("--profile", help="Profile: eucaim (default), basic, or a profile .toml file.")
    ] = "eucaim",
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="PS3.15 option to add, e.g. retain-uids; repeatable."),
    ] = None,
    site_prefix: Annotated[
        str,
        typer.Option("--site-prefix", envvar="EUCAIM_SITE_PREFIX", help="Prefix of patient pseudonyms."),
    ] = "SITE",
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes (default 1).")] = 1,
) -> None:
    """De-identify SRC into DST (PS3.15 Annex E); quarantine what must not leave, with reasons."""
    console = Console(stderr=True)
    try:
        key = load_key(key_file)
    except KeyFileError as error:
        raise _fail(console, EXIT_KEY, str(error)) from None
    try:
        chosen = profile_named(profile, _parse_options(option or []))
        Deidentifier(key, site_prefix=site_prefix, profile=chosen)  # validates prefix and profile
    except ValueError as error:
        raise _fail(console, EXIT_PROFILE, str(error)) from None
    if not src.exists():
        raise _fail(console, EXIT_SOURCE, f"source not found: {src}")
    try:
        dst.mkdir(parents=True, exist_ok=True)
        quarantine.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _fail(console, EXIT_OUTPUT, f"cannot create output folders ({error.strerror})") from None
    try:
        files = _iter_files(src, (dst.resolve(), quarantine.resolve()))
    except OSError as error:
        raise _fail(console, EXIT_SOURCE, f"cannot read source {src} ({error.strerror})") from None

    summary = RunSummary()
    started = time.time()
    columns = (TextColumn("de-identifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("deid", total=len(files))
        try:
            for outcome in _outcomes(files, src, dst, quarantine, key, site_prefix, chosen, jobs):
                summary.add(outcome)
                progress.advance(task)
        except OSError as error:
            raise _fail(console, EXIT_OUTPUT, f"cannot write output ({error.strerror})") from None
    elapsed = time.time() - started
    report = _write_report(quarantine, summary, chosen, started)
    console.print(_summary_table(summary, elapsed, dst, report))


@dataclass(frozen=True)
class Outcome:
    """What happened to one input (small, so workers can send it back)."""

    released: bool
    duplicate: bool = False
    study: str | None = None
    codes: tuple[str, ...] = ()
    item: dict[str, object] | None = None


def _process(engine: Deidentifier, path: Path, src: Path, dst: Path, qdir: Path) -> Outcome:
    """De-identify one file, write or quarantine it, and say what happened."""
    relative = _relative(path, src)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = QuarantineReason(code="unreadable", message=f"cannot read input ({error.strerror})", rule="io")
        return Outcome(False, codes=(reason.code,), item=_report_item(relative, None, qdir, None, (reason,)))
    result = engine.deidentify(data)
    if result.released:
        fresh = _write_released(dst, result)
        return Outcome(True, duplicate=not fresh, study=str(result.study_instance_uid))
    copy = _quarantine(qdir, path, relative)
    codes = tuple(sorted({r.code for r in result.reasons}))
    return Outcome(False, codes=codes, item=_report_item(relative, copy, qdir, result, result.reasons))


def _outcomes(files, src, dst, qdir, key, site_prefix, profile, jobs) -> Iterator[Outcome]:
    """Outcomes in input order, from this process or from `jobs` worker processes."""
    if jobs <= 1:
        engine = Deidentifier(key, site_prefix=site_prefix, profile=profile)
        for path in files:
            yield _process(engine, path, src, dst, qdir)
        return
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(key, site_prefix, profile, src, dst, qdir)
    ) as pool:
        yield from pool.map(_work, files, chunksize=8)


_WORKER: dict[str, object] = {}


def _init_worker(key: bytes, site_prefix: str, profile: Profile, src: Path, dst: Path, qdir: Path) -> None:
    _WORKER.update(
        engine=Deidentifier(key, site_prefix=site_prefix, profile=profile), src=src, dst=dst, qdir=qdir
    )


def _work(path: Path) -> Outcome:
    w = _WORKER
    return _process(w["engine"], path, w["src"], w["dst"], w["qdir"])  # type: ignore[arg-type]
