"""``eucaim-node deid``: exit codes, outputs, quarantine report."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import typer
from eucaim_node.cli.deid import DUPLICATE_CODE, REPORT_NAME, deid
from eucaim_node.deid import pseudonymise_uid
from typer.testing import CliRunner

from .conftest import KEY, make_ct, to_bytes

app = typer.Typer()
app.command()(deid)
runner = CliRunner()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "Garcia_Maria").mkdir(parents=True)
    (src / "Garcia_Maria" / "ct1.dcm").write_bytes(to_bytes(make_ct()))
    (src / "Garcia_Maria" / "ct2.dcm").write_bytes(
        to_bytes(make_ct(SOPInstanceUID="1.2.3.4.5.6.7.8.2"))
    )
    (src / "Garcia_Maria" / "burned.dcm").write_bytes(
        to_bytes(make_ct(SOPInstanceUID="1.2.3.4.5.6.7.8.3", BurnedInAnnotation="YES"))
    )
    (src / "readme.txt").write_text("not dicom")
    (tmp_path / "key").write_bytes(KEY)
    return tmp_path


def _invoke(tree: Path, *extra: str):
    return runner.invoke(
        app,
        [str(tree / "src"), str(tree / "dst"), "--key-file", str(tree / "key"),
         "--quarantine", str(tree / "q"), "--site-prefix", "ES01", *extra],
    )


def test_run_completes_with_quarantine(tree: Path) -> None:
    result = _invoke(tree)
    assert result.exit_code == 0, result.output
    outputs = sorted((tree / "dst").rglob("*.dcm"))
    assert len(outputs) == 2
    study = pseudonymise_uid("1.2.3.4.5.6.7.1", KEY)
    assert all(p.relative_to(tree / "dst").parts[0] == study for p in outputs)
    assert not any("Garcia" in str(p) for p in outputs)
    ds = pydicom.dcmread(outputs[0])
    assert ds.PatientID.startswith("ES01-")
    report = json.loads((tree / "q" / REPORT_NAME).read_text())
    assert report["summary"] == {
        "inputs": 4, "released": 2, "quarantined": 2,
        "by_code": {"burned-in-annotation": 1, "not-dicom": 1}, "studies_released": 1,
        "duplicates": 0, "skipped": 0, "skipped_by_code": {}, "replaced_values": {},
    }
    burned = next(i for i in report["items"] if i["reasons"][0]["code"] == "burned-in-annotation")
    assert burned["reasons"][0]["keyword"] == "BurnedInAnnotation"
    assert (tree / "q" / burned["quarantined_copy"]).exists()
    assert burned["study_key"] == study
    assert "summary" in result.output or "released" in result.output


def test_options_and_profile(tree: Path) -> None:
    result = _invoke(tree, "--profile", "basic", "--option", "retain-uids", "--option", "clean-descriptors")
    assert result.exit_code == 0, result.output
    (first, *_) = sorted((tree / "dst").rglob("*.dcm"))
    assert pydicom.dcmread(first).StudyInstanceUID == "1.2.3.4.5.6.7.1"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda t: (t / "key").unlink(), 2),
        (lambda t: (t / "key").write_bytes(b"short"), 2),
        (lambda t: __import__("shutil").rmtree(t / "src"), 3),
    ],
)
def test_fatal_errors(tree: Path, mutate, code: int) -> None:
    mutate(tree)
    result = _invoke(tree)
    assert result.exit_code == code
    assert "error" in result.output


def test_bad_option_is_fatal(tree: Path) -> None:
    assert _invoke(tree, "--option", "retain-everything").exit_code == 5


def test_key_never_printed(tree: Path) -> None:
    (tree / "key").write_bytes(b"S3CRETKEY")
    result = _invoke(tree)
    assert "S3CRETKEY" not in result.output


def test_profile_file_allows_burned_in(tree: Path) -> None:
    profile = tree / "site.toml"
    profile.write_text('base = "eucaim"\n[[allow]]\nmodality = "CT"\nburned_in_annotation_yes = true\n')
    result = _invoke(tree, "--profile", str(profile))
    assert result.exit_code == 0, result.output
    assert len(list((tree / "dst").rglob("*.dcm"))) == 3


def test_worker_processes_give_the_same_run(tree: Path) -> None:
    result = _invoke(tree, "--jobs", "2")
    assert result.exit_code == 0, result.output
    report = json.loads((tree / "q" / REPORT_NAME).read_text())
    assert report["summary"]["released"] == 2 and report["summary"]["quarantined"] == 2
    assert len(list((tree / "dst").rglob("*.dcm"))) == 2


# -- issue 9: paths stay inside DST/QDIR, nothing is lost, the quarantine is private -------------


def _report(tree: Path) -> dict:
    return json.loads((tree / "q" / REPORT_NAME).read_text())


def _adds_up(summary: dict) -> None:
    parts = summary["released"] + summary["quarantined"] + summary["duplicates"] + summary["skipped"]
    assert summary["inputs"] == parts


def _written_outside(tree: Path) -> list[Path]:
    """Every file under the test's folder that is not in src, dst, q or the key."""
    allowed = ("src", "dst", "q", "key", "outside")
    return [p for p in tree.rglob("*") if p.is_file() and p.relative_to(tree).parts[0] not in allowed] + [
        p for p in (tree / "outside").rglob("*") if (tree / "outside").exists()
    ]


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize(
    ("options", "hostile"),
    [
        ((), "1.2.840.10008.9/../../x"),  # kept verbatim by default: under the standard's root
        (("--option", "retain-uids"), "1.2.3/../../../outside/y"),
        (("--option", "retain-uids"), None),  # absolute: the test's own 'outside' folder
    ],
)
def test_hostile_uids_never_write_outside_dst(tree: Path, options, hostile) -> None:
    (tree / "outside").mkdir()
    uid = hostile or str(tree / "outside" / "abs")
    (tree / "src" / "evil.dcm").write_bytes(to_bytes(make_ct(StudyInstanceUID=uid, SOPInstanceUID="1.2.3.9.9")))
    result = _invoke(tree, *options)
    assert result.exit_code == 0, result.output
    assert _written_outside(tree) == []
    assert all(p.resolve().is_relative_to((tree / "dst").resolve()) for p in (tree / "dst").rglob("*"))
    report = _report(tree)
    evil = next(i for i in report["items"] if i["source"] == "evil.dcm")
    assert evil["status"] == "quarantined"
    assert evil["reasons"][0]["code"] == "invalid-uid" and evil["reasons"][0]["keyword"] == "StudyInstanceUID"
    assert uid not in json.dumps(report)
    assert report["summary"]["released"] == 2  # the rest of the batch
    _adds_up(report["summary"])


def test_a_link_planted_in_dst_is_not_followed_out_of_it(tree: Path) -> None:
    """The output folder of the study already exists as a link to elsewhere: refused, quarantined."""
    (tree / "outside").mkdir()
    (tree / "dst").mkdir()
    (tree / "dst" / pseudonymise_uid("1.2.3.4.5.6.7.1", KEY)).symlink_to(tree / "outside")
    result = _invoke(tree)
    assert result.exit_code == 0, result.output
    assert list((tree / "outside").iterdir()) == []
    summary = _report(tree)["summary"]
    assert summary["by_code"]["unsafe-path"] == 2 and summary["released"] == 0
    _adds_up(summary)


def test_quarantine_folder_is_private_whatever_the_umask(tree: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        result = _invoke(tree)
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    qdir = tree / "q"
    folders = [qdir, *(p for p in qdir.rglob("*") if p.is_dir())]
    files = [p for p in qdir.rglob("*") if p.is_file()]
    assert len(files) == 3  # two originals and the report
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def _same_uid_tree(tree: Path) -> tuple[Path, dict[str, bytes]]:
    """Six pairs of inputs sharing a SOP Instance UID with different content, one exact copy."""
    src = tree / "src"
    inputs = {}
    for n in range(6):
        uid = f"1.2.3.4.5.6.7.8.{100 + n}"
        inputs[f"a{n}.dcm"] = to_bytes(make_ct(SOPInstanceUID=uid, SeriesDescription=f"FIRST {n}"))
        inputs[f"b{n}.dcm"] = to_bytes(make_ct(SOPInstanceUID=uid, SeriesDescription=f"SECOND {n}"))
    inputs["c0.dcm"] = inputs["a0.dcm"]
    for name, data in inputs.items():
        (src / name).write_bytes(data)
    return src, inputs


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_same_sop_instance_uid_first_by_path_wins_and_every_input_is_accounted(tree: Path, jobs: str) -> None:
    from eucaim_node.deid import Deidentifier

    _, inputs = _same_uid_tree(tree)
    result = _invoke(tree, "--jobs", jobs)
    assert result.exit_code == 0, result.output
    report = _report(tree)
    engine = Deidentifier(KEY, site_prefix="ES01")
    study, series = pseudonymise_uid("1.2.3.4.5.6.7.1", KEY), pseudonymise_uid("1.2.3.4.5.6.7.2", KEY)
    for n in range(6):
        out = tree / "dst" / study / series / f"{pseudonymise_uid(f'1.2.3.4.5.6.7.8.{100 + n}', KEY)}.dcm"
        assert out.read_bytes() == engine.deidentify(inputs[f"a{n}.dcm"]).data  # never overwritten by b<n>
        second = next(i for i in report["items"] if i["source"] == f"b{n}.dcm")
        assert (second["status"], second["duplicate_of"]) == ("quarantined", f"a{n}.dcm")
        assert second["reasons"][0]["code"] == "duplicate-sop-instance-uid"
        assert (tree / "q" / second["quarantined_copy"]).read_bytes() == inputs[f"b{n}.dcm"]
    copy = next(i for i in report["items"] if i["source"] == "c0.dcm")
    assert (copy["status"], copy["duplicate_of"], copy["reasons"][0]["code"]) == ("duplicate", "a0.dcm", "exact-duplicate")
    summary = report["summary"]
    assert (summary["inputs"], summary["released"], summary["duplicates"]) == (17, 8, 1)
    assert summary["by_code"][DUPLICATE_CODE] == 6
    _adds_up(summary)
    assert not any(p.name.startswith(".deid-staging") for p in (tree / "dst").iterdir())


def test_a_rerun_into_the_same_dst_releases_again_and_overwrites_nothing(tree: Path) -> None:
    assert _invoke(tree).exit_code == 0
    before = {p: p.read_bytes() for p in (tree / "dst").rglob("*.dcm")}
    (tree / "src" / "Garcia_Maria" / "ct2.dcm").write_bytes(
        to_bytes(make_ct(SOPInstanceUID="1.2.3.4.5.6.7.8.2", SeriesDescription="CHANGED")))
    assert _invoke(tree).exit_code == 0
    assert {p: p.read_bytes() for p in (tree / "dst").rglob("*.dcm")} == before
    summary = _report(tree)["summary"]
    assert (summary["released"], summary["by_code"].get(DUPLICATE_CODE)) == (1, 1)
    _adds_up(summary)


def test_special_entries_are_counted_and_never_read(tree: Path) -> None:
    """A FIFO (opening it for reading would block), a socket, a broken link and a link to a folder."""
    import os
    import socket

    src = tree / "src"
    (src / "odd").mkdir()
    os.mkfifo(src / "odd" / "pipe")
    (src / "odd" / "gone.dcm").symlink_to(tree / "nowhere.dcm")
    (src / "odd" / "loop").symlink_to(src)
    (src / "odd" / "fifo-link.dcm").symlink_to(src / "odd" / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "odd" / "sock"))
        result = _invoke(tree, "--jobs", "2")
    assert result.exit_code == 0, result.output
    report = _report(tree)
    skipped = {i["source"]: i["reasons"][0]["code"] for i in report["items"] if i["status"] == "skipped"}
    assert skipped == {"odd/pipe": "special-file", "odd/fifo-link.dcm": "special-file",
                       "odd/gone.dcm": "broken-symlink", "odd/loop": "symlinked-folder", "odd/sock": "special-file"}
    summary = report["summary"]
    assert (summary["inputs"], summary["skipped"], summary["released"]) == (9, 5, 2)
    _adds_up(summary)


def test_a_folder_that_cannot_be_listed_is_reported_and_the_batch_goes_on(tree: Path, monkeypatch) -> None:
    """Root ignores directory permissions, so the failure is injected: listing one subfolder raises
    PermissionError (as it would for another user, or a folder removed mid-walk)."""
    import os

    (tree / "src" / "locked").mkdir()
    (tree / "src" / "locked" / "x.dcm").write_bytes(to_bytes(make_ct(SOPInstanceUID="1.2.3.4.5.6.7.8.9")))
    real = os.scandir

    def scandir(path="."):
        if isinstance(path, str | os.PathLike) and Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = _invoke(tree)
    assert result.exit_code == 0, result.output
    report = _report(tree)
    locked = next(i for i in report["items"] if i["source"] == "locked")
    assert (locked["status"], locked["reasons"][0]["code"]) == ("skipped", "unreadable-folder")
    assert "Permission denied" in locked["reasons"][0]["message"]
    assert report["summary"]["released"] == 2
    _adds_up(report["summary"])


def test_reading_a_fifo_returns_at_once(tmp_path: Path) -> None:
    """An input swapped for a FIFO after the walk: opened non-blocking, refused, never read."""
    import os

    from eucaim_node.cli.deid_files import NotRegularFile, read_regular_file

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotRegularFile, match="FIFO"):
        read_regular_file(tmp_path / "pipe")


@pytest.mark.parametrize("qdir", ["dst/q", "dst"])
def test_a_quarantine_folder_inside_dst_is_refused(tree: Path, qdir: str) -> None:
    """QDIR holds identifiable originals and a report naming SRC's files: inside DST (the released
    folder) they would leave with it. The run is refused before anything is written."""
    result = runner.invoke(app, [str(tree / "src"), str(tree / "dst"), "--key-file", str(tree / "key"),
                                 "--quarantine", str(tree / qdir), "--site-prefix", "ES01"])
    assert result.exit_code == 5, result.output
    assert "QDIR" in result.output or "quarantine" in result.output
    assert not any((tree / "dst").rglob("*")) if (tree / "dst").exists() else True


def test_a_source_inside_dst_is_refused(tree: Path) -> None:
    """SRC (identifiable) inside DST, or DST itself, would mix originals with released instances."""
    for dst in (tree / "src", tree):
        result = runner.invoke(app, [str(tree / "src"), str(dst), "--key-file", str(tree / "key"),
                                     "--quarantine", str(tree / "q"), "--site-prefix", "ES01"])
        assert result.exit_code == 5, result.output
        assert not list((tree / "src").rglob(".deid-staging-*"))
        assert not list((tree / "src").rglob("*/*/*.dcm"))


def test_folders_left_open_under_qdir_files_by_an_earlier_run_are_made_private(tree: Path) -> None:
    """QDIR itself is the operator's, but QDIR/files and everything under it are 0700 (docs/deid.md),
    also when an earlier run (or an older version) left them 0755 with originals inside."""
    import os
    import stat

    old = tree / "q" / "files" / "Garcia_Maria"
    old.mkdir(parents=True)
    (old / "earlier.dcm").write_bytes(b"identifiable original of an earlier run")
    for folder in (tree / "q" / "files", old):
        os.chmod(folder, 0o755)
    result = _invoke(tree)
    assert result.exit_code == 0, result.output
    for folder in (tree / "q" / "files", old):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


@pytest.mark.parametrize("planted", ["outside", "q"])
def test_a_link_in_place_of_the_report_is_a_clear_error_not_a_crash(tree: Path, planted: str) -> None:
    """QDIR/quarantine-report.json is a symbolic link (out of QDIR, or dangling inside it): the report
    is not written through it, and the run ends with exit 4 and one line, not a traceback."""
    (tree / "outside").mkdir()
    (tree / "q").mkdir()
    (tree / "q" / REPORT_NAME).symlink_to(tree / planted / "target.json")
    result = _invoke(tree)
    assert result.exit_code == 4, result.output
    assert isinstance(result.exception, SystemExit)
    assert "cannot write the quarantine report" in result.output
    assert not (tree / planted / "target.json").exists()


def test_an_input_that_gets_no_outcome_fails_the_run(tree: Path, monkeypatch) -> None:
    """The accounting check is real: the counts are compared with the entries the walk found, so an
    input lost between the walk and the summary (injected: its outcome is dropped) ends the run with
    exit 6 and a line saying how many, instead of a summary that silently adds up."""
    from eucaim_node.cli import deid as deid_module

    real = deid_module._outcomes

    def losing_one(*args, **kwargs):
        outcomes = real(*args, **kwargs)
        next(outcomes)  # the first input's outcome never reaches the summary
        yield from outcomes

    monkeypatch.setattr(deid_module, "_outcomes", losing_one)
    result = _invoke(tree)
    assert result.exit_code == 6, result.output
    assert "1 of 4 inputs" in result.output
    summary = _report(tree)["summary"]
    assert summary["inputs"] == 4
    assert summary["released"] + summary["quarantined"] + summary["duplicates"] + summary["skipped"] == 3


@pytest.mark.parametrize("qdir", ["src", "src/../src", "."])
def test_a_source_that_is_the_quarantine_folder_or_inside_it_is_refused(tree: Path, qdir: str) -> None:
    """SRC equal to QDIR, or inside it: the copies of quarantined originals (QDIR/files/...) and the
    report would land in SRC's tree and a rerun would process them again. Refused (exit 5) before
    anything is written."""
    result = runner.invoke(app, [str(tree / "src"), str(tree / "dst"), "--key-file", str(tree / "key"),
                                 "--quarantine", str(tree / qdir), "--site-prefix", "ES01"])
    assert result.exit_code == 5, result.output
    assert "must not be QDIR or inside it" in result.output
    assert not (tree / "dst").exists()
    assert not list(tree.rglob(REPORT_NAME))


def test_a_quarantine_folder_inside_the_source_is_not_walked(tree: Path) -> None:
    """QDIR inside SRC is allowed: the walk skips it, so a rerun never reads its own quarantine copies
    or report."""
    qdir = tree / "src" / "q"
    args = [str(tree / "src"), str(tree / "dst"), "--key-file", str(tree / "key"),
            "--quarantine", str(qdir), "--site-prefix", "ES01"]
    for _ in range(2):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    report = json.loads((qdir / REPORT_NAME).read_text())
    assert report["summary"]["inputs"] == 4
    assert not any(str(i["source"]).startswith("q/") for i in report["items"])


@pytest.mark.parametrize("blocker", ["folder-at-file", "file-at-folder"])
def test_an_output_path_taken_by_another_kind_of_entry_quarantines_just_that_input(tree: Path, blocker: str) -> None:
    """A folder in DST with an output file's name (or a file with its series folder's name) is not a
    reason to abort the batch (it was exit 4): the inputs that would go there are quarantined
    (`output-path-taken`), the rest released, and the entry in DST left as it was."""
    import shutil

    assert _invoke(tree).exit_code == 0
    outputs = sorted((tree / "dst").rglob("*.dcm"))
    shutil.rmtree(tree / "dst")
    shutil.rmtree(tree / "q")
    if blocker == "folder-at-file":
        outputs[0].mkdir(parents=True)
        expected_blocked = 1
    else:
        outputs[0].parent.parent.mkdir(parents=True)
        outputs[0].parent.write_bytes(b"not a folder")
        expected_blocked = 2
    result = _invoke(tree)
    assert result.exit_code == 0, result.output
    report = _report(tree)
    blocked = [i for i in report["items"] if any(r["code"] == "output-path-taken" for r in i["reasons"])]
    assert len(blocked) == expected_blocked
    assert all(i["status"] == "quarantined" and i["quarantined_copy"] for i in blocked)
    assert report["summary"]["released"] == 2 - expected_blocked
    assert report["summary"]["inputs"] == 4
    assert outputs[0].is_dir() if blocker == "folder-at-file" else outputs[0].parent.read_bytes() == b"not a folder"
