"""Every file bundled with pydicom goes through the engine without an exception."""

import io
from pathlib import Path

import pydicom
import pytest
from eucaim_node.deid import Deidentifier
from pydicom.data import get_testdata_file

from .conftest import KEY, SITE

DATA_DIR = Path(get_testdata_file("CT_small.dcm")).parent
FILES = sorted(p for p in DATA_DIR.rglob("*") if p.is_file())
ENGINE = Deidentifier(KEY, site_prefix=SITE)
KNOWN_CODES = {
    "not-dicom", "corrupt", "unknown-sop-class", "burned-in-annotation",
    "high-risk-modality", "phi-guard",
}


def test_there_are_files() -> None:
    assert len(FILES) > 100


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_crash_and_no_internal_error(path: Path) -> None:
    result = ENGINE.deidentify(path.read_bytes())
    assert {r.code for r in result.reasons} <= KNOWN_CODES
    if result.released:
        out = pydicom.dcmread(io.BytesIO(result.data))
        source = pydicom.dcmread(path)
        assert out.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
        if "PixelData" in source:
            assert out.PixelData == source.PixelData
        assert out.PatientIdentityRemoved == "YES"
        assert not any(e.tag.is_private for e in out.iterall())
