"""Unpacking a series archive (decision 0130) with hostile archives: every file lands complete under its own
SOPInstanceUID or not at all, whatever the archive does wrong."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from eucaim_node.materialiser.adapters.research import unpack_series_archive
from eucaim_node.materialiser.ports import ArchiveUnusable

SERIES = "2.25.100"


def part10(sop_uid: str, series_uid: str = SERIES) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = CTImageStorage, sop_uid, series_uid
    ds.BitsAllocated = 8
    ds.PixelData = bytes(range(256)) * 8
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


FILES = {f"2.25.100{i}": part10(f"2.25.100{i}") for i in range(3)}


def archive(path: Path, members: dict[str, bytes]) -> Path:
    """Named as Orthanc names them (not by UID), deflated as Orthanc does."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for n, data in enumerate(members.values()):
            zipped.writestr(f"PATIENT/STUDY/CT1 series/CT{n:06d}.dcm", data)
    return path


def targets(directory: Path, uids=FILES) -> dict[str, Path]:
    return {uid: directory / f"{uid}.dcm" for uid in uids}


def written(directory: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in directory.glob("*.dcm")}


def test_each_member_lands_under_its_sop_instance_uid_byte_for_byte(tmp_path):
    unpack_series_archive(archive(tmp_path / "a.zip.part", FILES), SERIES, targets(tmp_path))
    assert written(tmp_path) == FILES
    assert not list(tmp_path.glob("*.part"))[1:]  # only the archive itself (its caller removes it)


def test_members_not_asked_for_are_dropped_and_missing_ones_are_simply_not_written(tmp_path):
    present = {uid: data for uid, data in FILES.items() if uid != "2.25.1002"}
    extra = {"2.25.1009": part10("2.25.1009")}  # stored after the listing, say: not part of the frozen dataset
    unpack_series_archive(archive(tmp_path / "a.zip.part", present | extra), SERIES, targets(tmp_path))
    assert written(tmp_path) == present


def test_a_truncated_archive_is_unusable_and_leaves_no_file(tmp_path):
    whole = archive(tmp_path / "whole.zip", FILES).read_bytes()
    cut = tmp_path / "cut.zip.part"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # the central directory at the end is gone
    with pytest.raises(ArchiveUnusable, match="unreadable"):
        unpack_series_archive(cut, SERIES, targets(tmp_path))
    assert not written(tmp_path) and not (tmp_path / ".member.part").exists()


def test_a_corrupt_member_is_not_kept_under_a_final_name(tmp_path):
    path = archive(tmp_path / "a.zip.part", {"only": FILES["2.25.1000"]})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zipped:
        info = zipped.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF  # one byte of the deflated member: CRC-32 or inflate fails
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveUnusable):
        unpack_series_archive(path, SERIES, targets(tmp_path))
    assert not written(tmp_path)


def test_a_member_whose_size_differs_from_orthancs_listing_or_not_dicom_makes_the_archive_unusable(tmp_path):
    listed = {uid: len(data) for uid, data in FILES.items()}
    forged = {"2.25.1000": part10("2.25.1000", series_uid="2.25.999") + b"\0\0"}  # right name, other content
    with pytest.raises(ArchiveUnusable, match="Orthanc lists"):
        unpack_series_archive(archive(tmp_path / "a.zip.part", forged), SERIES, targets(tmp_path), listed)
    with pytest.raises(ArchiveUnusable, match="unreadable"):
        unpack_series_archive(archive(tmp_path / "b.zip.part", {"x": b"not DICOM at all" * 20}), SERIES,
                              targets(tmp_path))
    assert not written(tmp_path)


def test_a_member_without_file_meta_is_identified_by_its_data_set_and_must_be_of_the_series(tmp_path):
    bare = {uid: data[132:] for uid, data in FILES.items()}  # no preamble, no meta: pydicom's slow path
    # pydicom reads such a file only if told it is DICOM; the slow path refuses it as unreadable: fetched alone
    with pytest.raises(ArchiveUnusable, match="unreadable"):
        unpack_series_archive(archive(tmp_path / "a.zip.part", bare), SERIES, targets(tmp_path))
    assert not written(tmp_path)


def test_any_single_corrupt_byte_of_a_deflated_member_is_an_unusable_archive_never_another_error(tmp_path):
    """Some flipped bytes break the deflate stream itself (zlib.error), not only the CRC-32: each one must be an
    ArchiveUnusable (the series is then fetched instance by instance) or, where the inflater never reads the bit,
    an intact file; never another error, which stalled the series."""
    path = archive(tmp_path / "a.zip.part", {"only": FILES["2.25.1000"]})
    pristine = path.read_bytes()
    with zipfile.ZipFile(path) as zipped:
        info = zipped.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start, start + info.compress_size):
        data = bytearray(pristine)
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            unpack_series_archive(path, SERIES, targets(tmp_path))
        except ArchiveUnusable:
            assert not written(tmp_path), offset
        else:  # a bit the inflater never reads (the last byte's padding): the member is intact
            assert written(tmp_path) == {"2.25.1000": FILES["2.25.1000"]}, offset
            (tmp_path / "2.25.1000.dcm").unlink()
