"""The priority-1 contract of the engine."""

import io

import pydicom
import pytest
from eucaim_node.deid import Deidentifier, pseudonymise_patient_id, pseudonymise_uid

from .conftest import KEY, SITE, make_ct, to_bytes


@pytest.fixture
def engine() -> Deidentifier:
    return Deidentifier(KEY, site_prefix=SITE)


def _out(result) -> pydicom.Dataset:
    assert result.released, result.reasons
    return pydicom.dcmread(io.BytesIO(result.data))


def test_release_replaces_patient_identity(engine: Deidentifier, ct_bytes: bytes) -> None:
    out = _out(engine.deidentify(ct_bytes))
    pseudonym = pseudonymise_patient_id("HOSP-000123", KEY, SITE)
    assert out.PatientID == pseudonym
    assert str(out.PatientName) == pseudonym
    assert out.PatientBirthDate == ""
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod


def test_study_key_invariant(engine: Deidentifier, ct_bytes: bytes) -> None:
    result = engine.deidentify(ct_bytes)
    out = _out(result)
    assert out.StudyInstanceUID == pseudonymise_uid("1.2.3.4.5.6.7.1", KEY)
    assert result.study_instance_uid == out.StudyInstanceUID
    assert result.series_instance_uid == out.SeriesInstanceUID
    assert result.sop_instance_uid == out.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_every_uid_remapped_but_dicom_defined(engine: Deidentifier, ct_bytes: bytes) -> None:
    out = _out(engine.deidentify(ct_bytes))
    assert out.SOPClassUID == pydicom.uid.CTImageStorage
    assert out.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    ref = out.ReferencedImageSequence[0]
    assert ref.ReferencedSOPClassUID == pydicom.uid.CTImageStorage
    assert ref.ReferencedSOPInstanceUID == pseudonymise_uid("1.2.3.4.5.6.7.8.0", KEY)
    assert out.FrameOfReferenceUID == pseudonymise_uid("1.2.3.4.5.6.7.3", KEY)
    for elem in out.iterall():
        if elem.VR == "UI" and elem.keyword not in ("SOPClassUID", "ReferencedSOPClassUID"):
            assert str(elem.value).startswith(("2.25.", "1.2.840.10008.")), elem


def test_private_removed_and_pixels_identical(engine: Deidentifier, ct_bytes: bytes) -> None:
    source = pydicom.dcmread(io.BytesIO(ct_bytes))
    out = _out(engine.deidentify(ct_bytes))
    assert not any(e.tag.is_private for e in out.iterall())
    assert out.PixelData == source.PixelData
    assert "SourceApplicationEntityTitle" not in out.file_meta


def test_research_value_survives(engine: Deidentifier, ct_bytes: bytes) -> None:
    out = _out(engine.deidentify(ct_bytes))
    assert out.Modality == "CT"
    assert out.Manufacturer == "SIEMENS"
    assert out.BodyPartExamined == "CHEST"
    assert out.PatientSex == "F"
    assert out.PatientAge == "054Y"
    assert out.SliceThickness == 1.0
    assert out.SeriesDescription == "AXIAL 1.0 B31f"


def test_clean_descriptors_scrubs_name(engine: Deidentifier, ct_bytes: bytes) -> None:
    out = _out(engine.deidentify(ct_bytes))
    assert "garcia" not in out.StudyDescription.lower()
    assert out.StudyDescription.startswith("CT THORAX")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not-dicom"),
        (b"hello world", "not-dicom"),
        (b"\x00" * 128 + b"DICM" + b"\xff" * 50, "corrupt"),
    ],
)
def test_bad_input_is_quarantined(engine: Deidentifier, data: bytes, code: str) -> None:
    result = engine.deidentify(data)
    assert not result.released
    assert result.data is None
    assert result.reasons[0].code == code


def test_truncated_file_is_quarantined(engine: Deidentifier, ct_bytes: bytes) -> None:
    for cut in (140, 300, len(ct_bytes) - 10):
        result = engine.deidentify(ct_bytes[:cut])
        assert not result.released


def test_unknown_sop_class(engine: Deidentifier) -> None:
    result = engine.deidentify(to_bytes(make_ct(SOPClassUID="1.2.3.999")))
    assert not result.released
    assert result.reasons[0].code == "unknown-sop-class"


def test_deidentify_dataset_leaves_input_alone(engine: Deidentifier) -> None:
    ds = make_ct()
    result = engine.deidentify_dataset(ds)
    assert result.released
    assert str(ds.PatientName) == "Garcia^Maria^Luisa"
    assert result.dataset.PatientID.startswith(SITE + "-")


def test_repr_hides_key() -> None:
    assert "key" not in repr(Deidentifier(KEY, site_prefix=SITE)).lower().replace("site_prefix", "")


def test_huge_text_value_is_handled(engine: Deidentifier) -> None:
    ds = make_ct()
    ds.add_new(0x00204000, "LT", ("lesion " * 1_500_000)[:10_000_000])  # Image Comments, 10 MB
    result = engine.deidentify(to_bytes(ds))
    assert result.released
    assert len(result.data) < 20_000_000


def test_declared_length_beyond_file_is_corrupt(engine: Deidentifier, ct_bytes: bytes) -> None:
    # append an element that claims 4 GB - 2 bytes but carries 8
    tail = b"\x08\x00\x30\x10" + b"LO" + b"\xfe\xff" + b"GARCIA  "
    data = ct_bytes + tail
    result = engine.deidentify(data)
    assert not result.released
    assert result.reasons[0].code in {"corrupt", "not-dicom"}
    assert "GARCIA" not in repr(result.reasons)


def test_unknown_sop_class_message_does_not_echo_value(engine: Deidentifier) -> None:
    result = engine.deidentify(to_bytes(make_ct(SOPClassUID="1.2.3.4.5.6.7.8.9.99")))
    assert "1.2.3.4.5.6.7.8.9.99" not in result.reasons[0].message
