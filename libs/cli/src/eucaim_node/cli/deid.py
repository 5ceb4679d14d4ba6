"""``eucaim-node deid``: de-identify a folder of DICOM files for data managers.

    eucaim-node deid SRC DST --key-file KEY --quarantine QDIR [--profile NAME] [--option OPTION ...]

Walks SRC recursively. Released instances are written under DST as
``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` (the new,
pseudonymised UIDs: output paths never carry original file names). Every input
that is not released (quarantined, not DICOM, unreadable) is copied under QDIR
at its path relative to SRC and listed in ``QDIR/quarantine-report.json`` with
the reasons (code, element, rule, message — never the identifying value).

Every input is accounted for, in the order of its path (sorted), whatever ``--jobs``:
released, quarantined, a duplicate of an earlier input (same SOP Instance UID, same
output bytes), or skipped (a folder that cannot be listed, a broken link, a FIFO or other
special file). Of two inputs with the same SOP Instance UID but different content the
first (by path) is released; the second is quarantined (``duplicate-sop-instance-uid``)
and never overwrites it. The summary's counts are checked against the entries the walk found
(counted on their own): if they differ, the report is written and the run fails (exit 6).

Exit codes: 0 the run completed (even if inputs were quarantined or not DICOM);
2 the key file is missing, unreadable or shorter than 32 bytes; 3 SRC cannot be
read; 4 DST or QDIR cannot be written; 5 bad profile or option (or QDIR or SRC inside DST, or SRC
equal to or inside QDIR; QDIR inside SRC is skipped by the walk); 6 an input
found by the walk got no outcome (a bug: the report says what was accounted for). ``--jobs N`` spreads
the files over N worker processes (the report keeps input order).
"""

from __future__ import annotations

import json
import shutil
import tempfile
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
from eucaim_node.deid.uids import is_valid_uid
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .deid_files import (
    Inventory,
    NotRegularFile,
    Skipped,
    UnsafePath,
    find_inputs,
    inside,
    make_private_folder,
    read_regular_file,
    relative_to_source,
    safe_target,
    write_private_file,
)

EXIT_OK = 0
EXIT_KEY = 2
EXIT_SOURCE = 3
EXIT_OUTPUT = 4
EXIT_PROFILE = 5
EXIT_UNACCOUNTED = 6
REPORT_NAME = "quarantine-report.json"
REPORT_VERSION = 2
DUPLICATE_CODE = "duplicate-sop-instance-uid"
EARLIER_RUN = "(DST, from an earlier run)"


@dataclass(frozen=True)
class Outcome:
    """What happened to one input (small, so workers can send it back).

    `staged` is the released instance's bytes, written by the worker into the run's staging
    folder; the parent moves it to `target` (relative to DST), in input order, so the first
    input with a SOP Instance UID wins whatever the number of workers.
    """

    source: str
    status: str  # released, quarantined, skipped (duplicate is decided by the parent)
    staged: str | None = None
    target: str | None = None
    study: str | None = None
    item: dict[str, object] | None = None
    replaced: tuple[dict[str, str | None], ...] = ()


@dataclass
class RunSummary:
    """Counts for the closing summary and the report. `total` is the number of entries the walk
    found, set from the walk (not from the outcomes), so :meth:`unaccounted` can catch a lost input."""

    total: int = 0
    released: int = 0
    quarantined: int = 0
    duplicates: int = 0
    skipped: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    skipped_by_code: Counter[str] = field(default_factory=Counter)
    replaced_by_code: Counter[str] = field(default_factory=Counter)
    studies: set[str] = field(default_factory=set)
    items: list[dict[str, object]] = field(default_factory=list)
    replaced: list[dict[str, object]] = field(default_factory=list)

    def unaccounted(self) -> int:
        """Inputs found by the walk with no outcome (negative if some were counted twice)."""
        return self.total - (self.released + self.quarantined + self.duplicates + self.skipped)

    def add(self, status: str, item: dict[str, object] | None = None, study: str | None = None) -> None:
        if status == "released":
            self.released += 1
            self.studies.add(str(study))
            return
        item = item or {"reasons": []}
        self.items.append({"status": status, **item})
        codes = [str(r["code"]) for r in item["reasons"]]  # type: ignore[union-attr]
        if status == "quarantined":
            self.quarantined += 1
            self.by_code.update(sorted(set(codes)))
        elif status == "duplicate":
            self.duplicates += 1
        else:
            self.skipped += 1
            self.skipped_by_code.update(codes)

    def add_replaced(self, outcome: Outcome) -> None:
        if outcome.replaced:
            self.replaced.append({"source": outcome.source, "replaced": list(outcome.replaced)})
            self.replaced_by_code.update(str(r["code"]) for r in outcome.replaced)


def _fail(console: Console, code: int, message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _parse_options(values: list[str]) -> tuple[str, ...]:
    """``--option a --option b`` and ``--option a,b`` both work."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _report_item(
    source: str, copy: Path | None, qdir: Path, result: DeidResult | None, reasons: tuple[QuarantineReason, ...]
) -> dict[str, object]:
    return {
        "source": source,
        "quarantined_copy": str(copy.relative_to(qdir)) if copy else None,
        "study_key": result.study_instance_uid if result else None,
        "sop_class_uid": result.sop_class_uid if result else None,
        "modality": result.modality if result else None,
        "reasons": [r.as_dict() for r in reasons],
    }


def _skipped_item(skipped: Skipped) -> dict[str, object]:
    reason = QuarantineReason(code=skipped.code, message=skipped.message, rule="walk")
    return {"source": skipped.source, "reasons": [reason.as_dict()]}


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
            "duplicates": summary.duplicates,
            "skipped": summary.skipped,
            "by_code": dict(sorted(summary.by_code.items())),
            "skipped_by_code": dict(sorted(summary.skipped_by_code.items())),
            "replaced_values": dict(sorted(summary.replaced_by_code.items())),
            "studies_released": len(summary.studies),
        },
        "items": summary.items,
        "replaced": summary.replaced,
    }
    # file names in SRC often carry patient names: the report is as private as the copies
    return write_private_file(qdir, Path(REPORT_NAME), (json.dumps(report, indent=2) + "\n").encode("utf-8"))


def _summary_table(summary: RunSummary, elapsed: float, dst: Path, report: Path) -> Table:
    table = Table(title="de-identification summary", show_header=False)
    table.add_row("inputs", str(summary.total))
    table.add_row("released", f"{summary.released} ({len(summary.studies)} studies) → {dst}")
    table.add_row("quarantined", f"{summary.quarantined} → {report}")
    for code, count in sorted(summary.by_code.items()):
        table.add_row(f"  {code}", str(count))
    table.add_row("duplicates", f"{summary.duplicates} (same SOP Instance UID and content as an earlier input)")
    table.add_row("skipped", f"{summary.skipped} (not regular files, or folders that cannot be listed)")
    for code, count in sorted(summary.skipped_by_code.items()):
        table.add_row(f"  {code}", str(count))
    if summary.replaced_by_code:
        table.add_row("values replaced", ", ".join(f"{c} {n}" for c, n in sorted(summary.replaced_by_code.items())))
    rate = summary.total / elapsed if elapsed > 0 else 0.0
    table.add_row("time", f"{elapsed:.1f} s ({rate:.1f} files/s)")
    return table


def deid(
    src: Annotated[Path, typer.Argument(help="Folder (or file) of identifiable DICOM files, walked recursively.")],
    dst: Annotated[Path, typer.Argument(help="Where de-identified instances are written.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="File holding the node key (>= 32 bytes).")],
    quarantine: Annotated[
        Path, typer.Option("--quarantine", help="Where inputs not released are copied (mode 0700/0600), with a report.")
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
    overlap = _overlap(src, dst, quarantine)
    if overlap:
        raise _fail(console, EXIT_PROFILE, overlap)
    try:
        dst.mkdir(parents=True, exist_ok=True)
        make_private_folder(quarantine)
        staging = Path(tempfile.mkdtemp(prefix=".deid-staging-", dir=dst))
    except OSError as error:
        raise _fail(console, EXIT_OUTPUT, f"cannot create output folders ({error.strerror})") from None
    try:
        inventory = find_inputs(src, (dst.resolve(), quarantine.resolve()))
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise _fail(console, EXIT_SOURCE, f"cannot read source {src} ({error.strerror})") from None

    summary = RunSummary()
    started = time.time()
    try:
        _run(console, inventory, summary, src, dst, quarantine, staging, (key, site_prefix, chosen), jobs)
    except OSError as error:
        raise _fail(console, EXIT_OUTPUT, f"cannot write output ({error.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    elapsed = time.time() - started
    try:
        report = _write_report(quarantine, summary, chosen, started)
    except UnsafePath:
        raise _fail(console, EXIT_OUTPUT, f"cannot write the quarantine report {quarantine / REPORT_NAME}: it leads outside QDIR") from None
    except OSError as error:
        raise _fail(console, EXIT_OUTPUT, f"cannot write the quarantine report {quarantine / REPORT_NAME} ({error.strerror})") from None
    console.print(_summary_table(summary, elapsed, dst, report))
    if summary.unaccounted():
        raise _fail(console, EXIT_UNACCOUNTED,
                    f"{summary.unaccounted()} of {summary.total} inputs found in SRC have no outcome "
                    f"(released + quarantined + duplicates + skipped differ from what the walk found); see {report}")


def _overlap(src: Path, dst: Path, qdir: Path) -> str | None:
    """Why the folders cannot be used together, or None: DST is what leaves the clinical side, so
    neither QDIR (identifiable originals, a report naming SRC's files) nor SRC may lie inside it; and
    SRC may not be QDIR or lie inside it, or a rerun would process its own quarantine copies."""
    if inside(dst, qdir):
        return f"--quarantine {qdir} must not be inside DST {dst} (its originals would be released with DST)"
    if inside(dst, src):
        return f"SRC {src} must not be inside DST {dst} (identifiable files would be released with DST)"
    if inside(qdir, src):  # QDIR inside SRC is fine: the walk skips it
        return (f"SRC {src} must not be QDIR or inside it: --quarantine {qdir} (its copies and report would be "
                f"read again as inputs by a rerun)")
    return None


def _run(console: Console, inventory: Inventory, summary: RunSummary, src: Path, dst: Path, qdir: Path,
         staging: Path, engine_args: tuple[bytes, str, Profile], jobs: int) -> None:
    """Process every input and settle each outcome in input order."""
    summary.total = len(inventory.files) + len(inventory.skipped)  # what the walk found, counted on its own
    for skipped in inventory.skipped:
        summary.add("skipped", _skipped_item(skipped))
    written: dict[Path, str] = {}  # output path -> the input released there in this run
    columns = (TextColumn("de-identifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("deid", total=len(inventory.files))
        for outcome in _outcomes(inventory.files, src, qdir, staging, engine_args, jobs):
            _settle(outcome, summary, written, src, dst, qdir)
            progress.advance(task)


def _settle(outcome: Outcome, summary: RunSummary, written: dict[Path, str], src: Path, dst: Path,
            qdir: Path) -> None:
    """Move a released instance into DST unless its output path is taken (then: an exact
    duplicate, or a conflicting one that is quarantined); account for every outcome once."""
    if outcome.status != "released":
        summary.add(outcome.status, outcome.item)
        return
    staged = Path(str(outcome.staged))
    try:
        target = safe_target(dst, Path(str(outcome.target)))
    except UnsafePath:
        reason = QuarantineReason(code="unsafe-path", message="output path would leave DST (refused)", rule="path")
        _quarantine_late(outcome, summary, src, qdir, staged, reason, None)
        return
    if target.exists() and not target.is_file():  # e.g. a folder with the output file's name
        _quarantine_late(outcome, summary, src, qdir, staged, _path_taken("it is not a regular file"), None)
        return
    first = written.get(target) or (EARLIER_RUN if target.exists() else None)
    if first is None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a file where a folder of the path must be
            _quarantine_late(outcome, summary, src, qdir, staged, _path_taken("a file stands in for a folder"), None)
            return
        if not target.parent.resolve().is_relative_to(dst.resolve()):  # a link planted meanwhile
            reason = QuarantineReason(code="unsafe-path", message="output path would leave DST (refused)", rule="path")
            _quarantine_late(outcome, summary, src, qdir, staged, reason, None)
            return
        staged.replace(target)
        written[target] = outcome.source
        summary.add("released", study=outcome.study)
        summary.add_replaced(outcome)
        return
    if staged.read_bytes() == target.read_bytes():
        staged.unlink()
        if first == EARLIER_RUN:  # a rerun: the instance is in DST, as it would have been written
            written[target] = outcome.source
            summary.add("released", study=outcome.study)
            summary.add_replaced(outcome)
            return
        reason = QuarantineReason(code="exact-duplicate", message=f"same SOP Instance UID and content as {first}",
                                  rule="duplicate")
        summary.add("duplicate", {"source": outcome.source, "duplicate_of": first, "reasons": [reason.as_dict()]})
        return
    reason = QuarantineReason(code=DUPLICATE_CODE, rule="duplicate",
                              message=f"another input with this SOP Instance UID and different content was released "
                                      f"first: {first}; not overwritten")
    _quarantine_late(outcome, summary, src, qdir, staged, reason, first)


def _path_taken(why: str) -> QuarantineReason:
    """The output path is held in DST by another kind of entry: only this input is affected."""
    return QuarantineReason(code="output-path-taken", rule="path",
                            message=f"the output path in DST is taken ({why}); nothing written there")


def _quarantine_late(outcome: Outcome, summary: RunSummary, src: Path, qdir: Path, staged: Path,
                     reason: QuarantineReason, first: str | None) -> None:
    """Quarantine an input the engine released but that cannot be written: copy its original."""
    staged.unlink(missing_ok=True)
    path = src / outcome.source if src.is_dir() else src
    try:
        copy = _copy_original(qdir, Path(outcome.source), read_regular_file(path))
    except (OSError, NotRegularFile):
        copy = None
    item = _report_item(outcome.source, copy, qdir, None, (reason,))
    item["study_key"] = outcome.study
    if first is not None:
        item["duplicate_of"] = first
    summary.add("quarantined", item)


def _copy_original(qdir: Path, relative: Path, data: bytes) -> Path | None:
    """Copy an identifiable original to ``QDIR/files/<relative>`` (0600 in 0700 folders)."""
    try:
        return write_private_file(qdir, Path("files") / relative, data)
    except (OSError, UnsafePath):
        return None


def _released_path(result: DeidResult) -> str:
    """``<study>/<series>/<sop>.dcm`` from the result's UIDs, each a valid UID (PS3.5 §9.1: digits
    and dots only, so no separator, ``..`` or absolute part); UnsafePath otherwise."""
    parts = (result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid)
    if not all(isinstance(p, str) and is_valid_uid(p) for p in parts):
        raise UnsafePath("UID")
    study, series, sop = parts
    return f"{study}/{series}/{sop}.dcm"


def _process(engine: Deidentifier, index: int, path: Path, src: Path, qdir: Path, staging: Path) -> Outcome:
    """De-identify one file; stage a released instance, quarantine anything else."""
    source = str(relative_to_source(path, src))
    try:
        data = read_regular_file(path)
    except NotRegularFile as kind:
        return Outcome(source, "skipped", item=_skipped_item(
            Skipped(source, "special-file", f"not a regular file when opened ({kind})")))
    except OSError as error:
        reason = QuarantineReason(code="unreadable", message=f"cannot read input ({error.strerror})", rule="io")
        return Outcome(source, "quarantined", item=_report_item(source, None, qdir, None, (reason,)))
    result = engine.deidentify(data)
    if result.released:
        try:
            target = _released_path(result)
        except UnsafePath:
            result = DeidResult(released=False, reasons=(QuarantineReason(
                code="unsafe-path", message="output path from the UIDs would not be a plain UID path", rule="path"),))
        else:
            staged = staging / f"{index:09d}.dcm"
            staged.write_bytes(result.data or b"")
            replaced = tuple(r.as_dict() for r in result.replaced)
            return Outcome(source, "released", staged=str(staged), target=target,
                           study=str(result.study_instance_uid), replaced=replaced)
    copy = _copy_original(qdir, Path(source), data)
    return Outcome(source, "quarantined", item=_report_item(source, copy, qdir, result, result.reasons))


def _outcomes(files: list[Path], src: Path, qdir: Path, staging: Path, engine_args: tuple[bytes, str, Profile],
              jobs: int) -> Iterator[Outcome]:
    """Outcomes in input order, from this process or from `jobs` worker processes."""
    key, site_prefix, profile = engine_args
    if jobs <= 1:
        engine = Deidentifier(key, site_prefix=site_prefix, profile=profile)
        for index, path in enumerate(files):
            yield _process(engine, index, path, src, qdir, staging)
        return
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(key, site_prefix, profile, src, qdir, staging)
    ) as pool:
        yield from pool.map(_work, enumerate(files), chunksize=8)


_WORKER: dict[str, object] = {}


def _init_worker(key: bytes, site_prefix: str, profile: Profile, src: Path, qdir: Path, staging: Path) -> None:
    _WORKER.update(
        engine=Deidentifier(key, site_prefix=site_prefix, profile=profile), src=src, qdir=qdir, staging=staging
    )


def _work(job: tuple[int, Path]) -> Outcome:
    w = _WORKER
    index, path = job
    return _process(w["engine"], index, path, w["src"], w["qdir"], w["staging"])  # type: ignore[arg-type]
