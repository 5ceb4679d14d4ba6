"""Unpacking a series archive (decision 0130) with hostile archives: every file lands complete under its own
SOPInstanceUID or not at all, whatever the archive does wrong."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import struct
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from eucaim_node.datasets import Creation, StudyRef, new_dataset_id
from eucaim_node.datasets import Dataset as DatasetVersion
from eucaim_node.datasets.layout import DatasetRoot
from eucaim_node.datasets.memory import MemoryStore
from eucaim_node.materialiser.adapters.research import (ResearchOrthancSource, archive_size_limit, part10_uids,
                                                        unpack_series_archive)
from eucaim_node.materialiser.core.materialise import Materialiser
from eucaim_node.materialiser.ports import ArchiveUnusable, SourceSeries
from eucaim_node.orthanc import OrthancClient, OrthancEndpoint

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


#: What Orthanc lists for the series: every instance's file size.
LISTED = {uid: len(data) for uid, data in FILES.items()}


def targets(directory: Path, uids=FILES) -> dict[str, Path]:
    return {uid: directory / f"{uid}.dcm" for uid in uids}


def written(directory: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in directory.glob("*.dcm")}


def test_each_member_lands_under_its_sop_instance_uid_byte_for_byte(tmp_path):
    unpack_series_archive(archive(tmp_path / "a.zip.part", FILES), SERIES, targets(tmp_path), LISTED)
    assert written(tmp_path) == FILES
    assert not list(tmp_path.glob("*.part"))[1:]  # only the archive itself (its caller removes it)


def test_members_not_asked_for_are_dropped_and_missing_ones_are_simply_not_written(tmp_path):
    present = {uid: data for uid, data in FILES.items() if uid != "2.25.1002"}
    extra = {"2.25.1009": part10("2.25.1009")}  # stored after the listing, say: not part of the frozen dataset
    unpack_series_archive(archive(tmp_path / "a.zip.part", present | extra), SERIES, targets(tmp_path), LISTED)
    assert written(tmp_path) == present


def test_a_truncated_archive_is_unusable_and_leaves_no_file(tmp_path):
    whole = archive(tmp_path / "whole.zip", FILES).read_bytes()
    cut = tmp_path / "cut.zip.part"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # the central directory at the end is gone
    with pytest.raises(ArchiveUnusable, match="unreadable"):
        unpack_series_archive(cut, SERIES, targets(tmp_path), LISTED)
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
        unpack_series_archive(path, SERIES, targets(tmp_path), LISTED)
    assert not written(tmp_path)


def test_a_member_whose_size_differs_from_orthancs_listing_or_not_dicom_makes_the_archive_unusable(tmp_path):
    listed = LISTED | {"2.25.1000": LISTED["2.25.1000"] - 2}  # the same file, but Orthanc lists another size
    with pytest.raises(ArchiveUnusable, match="Orthanc lists"):
        unpack_series_archive(archive(tmp_path / "a.zip.part", FILES), SERIES, targets(tmp_path), listed)
    with pytest.raises(ArchiveUnusable, match="unreadable"):
        unpack_series_archive(archive(tmp_path / "b.zip.part", {"x": b"x" * LISTED["2.25.1000"]}), SERIES,
                              targets(tmp_path), LISTED)
    assert not written(tmp_path)


def test_a_member_without_file_meta_is_identified_by_its_data_set_and_must_be_of_the_series(tmp_path):
    bare = {uid: data[132:] for uid, data in FILES.items()}  # no preamble, no meta: pydicom's slow path
    listed = {uid: len(data) for uid, data in bare.items()}
    # pydicom reads such a file only if told it is DICOM; the slow path refuses it as unreadable: fetched alone
    with pytest.raises(ArchiveUnusable, match="unreadable"):
        unpack_series_archive(archive(tmp_path / "a.zip.part", bare), SERIES, targets(tmp_path), listed)
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
            unpack_series_archive(path, SERIES, targets(tmp_path), LISTED)
        except ArchiveUnusable:
            assert not written(tmp_path), offset
        else:  # a bit the inflater never reads (the last byte's padding): the member is intact
            assert written(tmp_path) == {"2.25.1000": FILES["2.25.1000"]}, offset
            (tmp_path / "2.25.1000.dcm").unlink()


def patched(path: Path, member: int, **fields: int) -> Path:
    """The archive with fields of one member's central-directory entry (what ``zipfile`` trusts) overwritten:
    ``crc``, ``compressed``, ``size`` (uncompressed), as a forger would."""
    data = bytearray(path.read_bytes())
    entry = -1
    for _ in range(member + 1):
        entry = data.index(b"PK\x01\x02", entry + 1)
    for name, offset in (("crc", 16), ("compressed", 20), ("size", 24)):
        if name in fields:
            struct.pack_into("<I", data, entry + offset, fields[name])
    path.write_bytes(bytes(data))
    return path


def test_a_member_declaring_more_than_any_listed_file_is_refused_before_anything_is_decompressed(tmp_path):
    """A header that declares 4 GiB for a member holding one small file: refused on what it declares (a copy
    would have ended early with another message), and no member is decompressed to disk."""
    path = patched(archive(tmp_path / "a.zip.part", FILES), 0, size=0xFFFFFFFE)
    with pytest.raises(ArchiveUnusable, match=r"declares a member of 4294967294 bytes, more than any file"):
        unpack_series_archive(path, SERIES, targets(tmp_path), LISTED)
    assert not written(tmp_path) and not (tmp_path / ".member.part").exists()


def test_a_member_whose_header_declares_more_than_it_holds_is_refused(tmp_path):
    """The deflate stream ends before the declared size with a CRC-32 right for what it holds: ``zipfile`` reports
    no error, the copy counts the bytes."""
    short = part10("2.25.1000")[:-10]  # ten bytes short of what Orthanc lists, and of what the header declares
    path = patched(archive(tmp_path / "a.zip.part", {"2.25.1000": short}), 0, size=LISTED["2.25.1000"])
    with pytest.raises(ArchiveUnusable, match=rf"member of {len(short)} bytes where its ZIP header declares"):
        unpack_series_archive(path, SERIES, targets(tmp_path), LISTED)
    assert not written(tmp_path)


def test_a_member_holding_more_than_its_header_declares_is_never_written_past_the_declared_size(tmp_path):
    """The deflate stream holds the instance and 1 MiB more. Declared with the CRC-32 of all of it, the copy stops
    at the declared size and the CRC-32 fails; declared with the CRC-32 of the instance alone (a careful forger),
    exactly the declared bytes are written — the instance — never the rest."""
    instance = FILES["2.25.1000"]
    padded = {"2.25.1000": instance + b"\xff" * (1 << 20)}
    path = patched(archive(tmp_path / "a.zip.part", padded), 0, size=len(instance))
    with pytest.raises(ArchiveUnusable, match="Bad CRC-32"):
        unpack_series_archive(path, SERIES, targets(tmp_path), LISTED)
    assert not written(tmp_path)
    patched(path, 0, crc=zlib.crc32(instance))
    unpack_series_archive(path, SERIES, targets(tmp_path), LISTED)
    assert written(tmp_path) == {"2.25.1000": instance}


def test_a_member_of_another_series_is_refused_whichever_reader_identifies_it(tmp_path):
    """Same SOPInstanceUID, same size, another SeriesInstanceUID in the data set: refused, by the direct reader
    (explicit and implicit VR little endian) and by pydicom (a sequence of undefined length before the series)."""
    def other_series(syntax=ExplicitVRLittleEndian, sequence=False) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(part10("2.25.1000", series_uid="2.25.999")))
        ds.file_meta.TransferSyntaxUID = syntax
        if sequence:
            ds.ReferencedImageSequence = [Dataset()]
            ds["ReferencedImageSequence"].is_undefined_length = True
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian,
                   little_endian=True)
        return buffer.getvalue()

    for n, data in enumerate([other_series(), other_series(ImplicitVRLittleEndian), other_series(sequence=True)]):
        listed = LISTED | {"2.25.1000": len(data)}
        assert part10_uids(data) == (("2.25.1000", "2.25.999") if n < 2 else None)  # which reader is exercised
        with pytest.raises(ArchiveUnusable, match="another series"):
            unpack_series_archive(archive(tmp_path / f"{n}.zip.part", {"2.25.1000": data}), SERIES,
                                  targets(tmp_path), listed)
        assert not written(tmp_path)


def test_the_direct_reader_gives_what_pydicom_reads(tmp_path):
    for data in FILES.values():
        ds = pydicom.dcmread(io.BytesIO(data))
        assert part10_uids(data) == (ds.SOPInstanceUID, ds.SeriesInstanceUID)
    assert part10_uids(b"\0" * 200) is None and part10_uids(FILES["2.25.1000"][:300]) is None


# -- the materialiser against a stand-in research Orthanc that serves a hostile archive ------------------------------

SUBJECT = "EUCAIM-LOCAL-" + "3" * 20
INSTANCES = {f"i{n}": uid for n, uid in enumerate(FILES)}  # Orthanc instance ID → SOPInstanceUID


def oversized() -> bytes:
    """Every file of the series and one more member of 1 MiB: past the download limit of three small files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zipped:
        for n, data in enumerate(FILES.values()):
            zipped.writestr(f"P/S/CT1/CT{n:06d}.dcm", data)
        zipped.writestr("P/S/CT1/CT999999.dcm", bytes(1 << 20))
    return buffer.getvalue()


def hostile(tmp_path: Path, kind: str) -> bytes:
    whole = archive(tmp_path / f"{kind}.zip", FILES)
    if kind == "declares more than any listed file":
        return patched(whole, 1, size=LISTED["2.25.1001"] * 1000).read_bytes()
    if kind == "central directory size lies":
        shorter = FILES | {"2.25.1001": FILES["2.25.1001"][:-10]}
        return patched(archive(tmp_path / "short.zip", shorter), 1, size=LISTED["2.25.1001"]).read_bytes()
    if kind == "member of another series":
        return archive(tmp_path / "other.zip", FILES | {"2.25.1001": part10("2.25.1001", "2.25.999")}).read_bytes()
    return oversized()


class _ResearchOrthanc(BaseHTTPRequestHandler):
    """Answers the materialiser's requests as Orthanc would, but ``/series/se/archive`` with ``archive``."""

    archive = b""
    requested: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requested.append(self.path)
        instances = [{"ID": i, "ParentSeries": "se", "MainDicomTags": {"SOPInstanceUID": uid},
                      "FileSize": LISTED[uid]} for i, uid in INSTANCES.items()]
        answers = {"/studies/st/series": json.dumps([{"ID": "se", "MainDicomTags": {"SeriesInstanceUID": SERIES}}]),
                   "/studies/st/instances": json.dumps(instances), "/series/se/archive": self.archive}
        answers |= {f"/instances/{i}/file": FILES[uid] for i, uid in INSTANCES.items()}
        self._answer(answers.get(self.path))

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(json.dumps([{"Type": "Study", "ID": "st"}]) if self.path == "/tools/lookup" else None)

    def _answer(self, body: str | bytes | None) -> None:
        if body is None:
            self.send_error(404)
            return
        body = body.encode() if isinstance(body, str) else body
        self.send_response(200)
        if not self.path.endswith("/archive"):  # Orthanc streams an archive without announcing its length
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def research_orthanc():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ResearchOrthanc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


class _NoClinicalData:
    async def eforms(self, subjects):
        return {}


@pytest.mark.parametrize("kind", ["oversized download", "declares more than any listed file",
                                  "central directory size lies", "member of another series"])
async def test_a_hostile_archive_is_refused_and_the_series_comes_instance_by_instance(
        kind, research_orthanc, tmp_path, caplog):
    """End to end through the client, the adapter and the core: the archive is unusable, the warning says why,
    each instance is then fetched alone and the dataset holds exactly the files Orthanc lists."""
    refusals = {"oversized download": "more than .* bytes, the most allowed",
                "declares more than any listed file": "more than any file Orthanc lists",
                "central directory size lies": "where its ZIP header declares",
                "member of another series": "holds a file of another series"}
    _ResearchOrthanc.archive, _ResearchOrthanc.requested = hostile(tmp_path, kind), []
    store, root = MemoryStore(), DatasetRoot(tmp_path / "root")
    dataset = DatasetVersion(id=new_dataset_id(), name="hostile", author="test", provenance={"kind": "studies"},
                      studies=(StudyRef(study_uid="2.25.1", subject=SUBJECT, collection_id="c", series=(SERIES,)),))
    await store.insert(dataset)
    client = OrthancClient(OrthancEndpoint(url=research_orthanc, username="u", password="p"))

    async def publish(event) -> None:
        return None

    materialiser = Materialiser(store, ResearchOrthancSource(client), _NoClinicalData(), root, publish,
                                concurrency=2)
    with caplog.at_level(logging.WARNING, logger="eucaim_node.materialiser"):
        await materialiser.run_once()
    unusable = [r.error for r in caplog.records if r.getMessage().startswith("series archive unusable")]
    assert len(unusable) == 1 and re.search(refusals[kind], unusable[0]), unusable
    assert _ResearchOrthanc.requested.count("/series/se/archive") == 1
    alone = [p for p in _ResearchOrthanc.requested if p.endswith("/file")]
    # The hostile member's instance (i1) comes alone; one unpacked before the refusal is not fetched twice.
    assert "/instances/i1/file" in alone and len(alone) == len(set(alone)), alone
    done = await store.get(dataset.id)
    assert done.creation is Creation.DONE, done.creation_error
    files = {p.stem: p.read_bytes() for p in root.dataset_dir(dataset.id).rglob("*.dcm")}
    assert files == FILES and not list(root.dataset_dir(dataset.id).rglob("*.part"))


def test_the_download_limit_holds_an_archive_of_incompressible_files_with_the_longest_names_orthanc_writes(
        tmp_path):
    """The limit is not a guess that cuts real archives: deflated random bytes (deflate's worst case) under names
    of four components of 64 characters and more (PatientID PatientName/…), ZIP64 on, fit beneath it."""
    sizes = [1, 700, 5000, 1 << 20, 3 << 20]
    name = "/".join(["X" * 64 + " " + "Y" * 64 + "^Z" * 40] * 3) + "/CT000000.dcm"
    path = tmp_path / "worst.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for n, size in enumerate(sizes):
            with zipped.open(f"{name}{n}", "w", force_zip64=True) as member:
                member.write(random.Random(n).randbytes(size))
    assert path.stat().st_size <= archive_size_limit(sizes)
    assert archive_size_limit(sizes) - sum(sizes) < sum(sizes) // 100 + 200_000  # and not much more than the files


async def test_a_series_without_every_file_size_listed_is_left_to_the_instance_by_instance_path(tmp_path):
    class NoArchive:
        async def download_archive(self, *args, **kwargs):
            raise AssertionError("an archive that cannot be bounded was downloaded")

    series = SourceSeries("se", tuple(INSTANCES.items()), {uid: LISTED[uid] for uid in list(FILES)[:2]})
    with pytest.raises(ArchiveUnusable, match="no file size for 1 of the 3 instances"):
        await ResearchOrthancSource(NoArchive()).fetch_series(series, SERIES, targets(tmp_path))
    assert not list(tmp_path.iterdir())
