"""``eucaim-node deid``: exit codes, outputs, quarantine report."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import typer
from eucaim_node.cli.deid import REPORT_NAME, deid
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
        "duplicate_instances": 0,
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
