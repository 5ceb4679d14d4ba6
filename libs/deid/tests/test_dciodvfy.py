"""dciodvfy (dicom3tools) finds no more errors, and no new error, in the output than in the input.

These tests run the real binary; they fail (not skip) if it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from eucaim_node.deid import BASIC, EUCAIM_DEFAULT, Deidentifier, Option
from pydicom.data import get_testdata_file

from .builders import make_seg, make_sr
from .conftest import KEY, SITE, make_ct, to_bytes

DCIODVFY = "/usr/bin/dciodvfy"
DATA_DIR = Path(get_testdata_file("CT_small.dcm")).parent
ENGINE = Deidentifier(KEY, site_prefix=SITE)


def _released_pydicom_files() -> list[Path]:
    """Every bundled pydicom file the default profile releases (collected at import)."""
    paths = sorted(p for p in DATA_DIR.rglob("*") if p.is_file())
    return [p for p in paths if ENGINE.deidentify(p.read_bytes()).released]


RELEASED = _released_pydicom_files()


def _one_per_sop_class(paths: list[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for path in paths:
        result = ENGINE.deidentify(path.read_bytes())
        seen.setdefault(str(result.sop_class_uid), path)
    return list(seen.values())


ONE_PER_CLASS = _one_per_sop_class(RELEASED)


def dciodvfy_errors(path: Path) -> list[str]:
    binary = shutil.which("dciodvfy") or DCIODVFY
    assert Path(binary).exists(), "dciodvfy (dicom3tools) is required: apt-get install dicom3tools"
    proc = subprocess.run([binary, str(path)], capture_output=True, text=True, errors="replace", timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    # values quoted in messages (UIDs, dates) change by design: compare the errors, not the values
    return [_normalise(line) for line in lines if line.startswith("Error")]


def _normalise(line: str) -> str:
    line = re.sub(r"\d+(?:\.\d+)*", "#", line)  # UIDs, numbers
    return re.sub(r"= <[^>]*>", "= <>", line)


def _compare(tmp_path: Path, data: bytes, profile=EUCAIM_DEFAULT) -> None:
    source = tmp_path / "in.dcm"
    source.write_bytes(data)
    result = Deidentifier(KEY, site_prefix=SITE, profile=profile).deidentify(data)
    assert result.released, result.reasons
    out = tmp_path / "out.dcm"
    out.write_bytes(result.data)
    before, after = dciodvfy_errors(source), dciodvfy_errors(out)
    assert len(after) <= len(before), sorted(set(after) - set(before))
    assert set(after) <= set(before), sorted(set(after) - set(before))  # and no new kind of error


def test_dciodvfy_is_installed() -> None:
    assert Path(shutil.which("dciodvfy") or DCIODVFY).exists()


def test_most_pydicom_files_are_released() -> None:
    assert len(RELEASED) > 80


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: p.name)
def test_pydicom_files_not_worse(tmp_path: Path, path: Path) -> None:
    _compare(tmp_path, path.read_bytes())


@pytest.mark.parametrize("path", ONE_PER_CLASS, ids=lambda p: p.name)
def test_basic_profile_not_worse(tmp_path: Path, path: Path) -> None:
    """Basic removes the most, so it is the strictest test of the compound-code resolution."""
    from eucaim_node.deid import BASIC

    _compare(tmp_path, path.read_bytes(), BASIC)


@pytest.mark.parametrize(
    "options", [(), (Option.RETAIN_UIDS,), (Option.CLEAN_STRUCTURED_CONTENT, Option.RETAIN_SAFE_PRIVATE)]
)
def test_synthetic_ct_not_worse(tmp_path: Path, options) -> None:
    _compare(tmp_path, to_bytes(make_ct()), EUCAIM_DEFAULT.with_options(*options))


def test_synthetic_basic_profile_not_worse(tmp_path: Path) -> None:
    from eucaim_node.deid import BASIC

    _compare(tmp_path, to_bytes(make_ct()), BASIC)


PROFILES = {
    "default": EUCAIM_DEFAULT,
    "basic": BASIC,
    "structured": EUCAIM_DEFAULT.with_options(Option.CLEAN_STRUCTURED_CONTENT),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_seg_not_worse(tmp_path: Path, profile: str) -> None:
    seg = make_seg()
    if profile == "basic":  # without Clean Descriptors the guard would (rightly) block the name
        seg.ContentDescription = "Nodule"
    _compare(tmp_path, to_bytes(seg), PROFILES[profile])


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_sr_not_worse(tmp_path: Path, profile: str) -> None:
    _compare(tmp_path, to_bytes(make_sr()), PROFILES[profile])
