"""dicom_tools against the real binaries, without any server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from eucaim_node.stack.dicom_tools import DicomToolError, dciodvfy, storescu


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_storescu_raises_with_its_output_when_nobody_listens(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    path = tmp_path / "sc.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomToolError, match="Association Request Failed") as failure:
        storescu(path, "127.0.0.1", closed_port(), "NOBODY")
    assert failure.value.returncode != 0


def test_missing_inputs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storescu(tmp_path / "nope.dcm", "127.0.0.1", 104, "X")
    with pytest.raises(ValueError):
        storescu([], "127.0.0.1", 104, "X")
    with pytest.raises(FileNotFoundError):
        dciodvfy(tmp_path / "nope.dcm")
