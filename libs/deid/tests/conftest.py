"""Shared fixtures: a test key and small synthetic instances built in memory."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SITE = "ES01"


@pytest.fixture
def quiet():
    """Building hostile test data makes pydicom warn, quoting the value; the engine itself is quiet."""
    from eucaim_node.deid.engine import quiet_pydicom

    with quiet_pydicom():
        yield


@pytest.fixture
def key() -> bytes:
    return KEY


def make_ct(**overrides: object) -> Dataset:
    """A small CT instance carrying typical identifying values."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.8.1"
    ds.StudyInstanceUID = "1.2.3.4.5.6.7.1"
    ds.SeriesInstanceUID = "1.2.3.4.5.6.7.2"
    ds.FrameOfReferenceUID = "1.2.3.4.5.6.7.3"
    ds.PatientName = "Garcia^Maria^Luisa"
    ds.PatientID = "HOSP-000123"
    ds.PatientBirthDate = "19700131"
    ds.PatientSex = "F"
    ds.PatientAge = "054Y"
    ds.PatientAddress = "Calle Mayor 5, Valencia"
    ds.AccessionNumber = "ACC998877"
    ds.InstitutionName = "Hospital La Fe"
    ds.ReferringPhysicianName = "Lopez^Jorge"
    ds.StudyDate = "20240115"
    ds.SeriesDate = "20240115"
    ds.StudyTime = "101500"
    ds.StudyDescription = "CT THORAX Garcia"
    ds.SeriesDescription = "AXIAL 1.0 B31f"
    ds.Modality = "CT"
    ds.Manufacturer = "SIEMENS"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.0"
    ds.StudyID = "S12345"
    ds.Rows = 4
    ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(32))
    ref = Dataset()
    ref.ReferencedSOPClassUID = CTImageStorage
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.0"
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new((0x0009, 0x0010), "LO", "ACME PRIVATE")
    ds.add_new((0x0009, 0x1001), "LO", "Garcia secret")
    for name, value in overrides.items():
        setattr(ds, name, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.SourceApplicationEntityTitle = "CT_SCANNER_1"
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def ct_bytes() -> bytes:
    return to_bytes(make_ct())
