"""The research Orthanc as the dataset's only image source (REST present in Orthanc 1.10 and 1.12)."""

from __future__ import annotations

import asyncio
import os
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial

from eucaim_node.datasets.layout import write_file_atomically
from eucaim_node.orthanc import OrthancAnswerTooLarge, OrthancClient, OrthancNotFound, OrthancUnavailable

from ..ports import ArchiveUnusable, SourceMismatch, SourceSeries

#: Temporary names inside the series directory; ``*.part`` is what the materialiser drops before sealing.
ARCHIVE_PART = ".archive.zip.part"
MEMBER_PART = ".member.part"
#: Bytes of a member kept in memory to read its header from; a header longer than that is read from the file.
HEAD = 64 * 1024
#: Bytes of a member copied at a time.
CHUNK = 1 << 20

# How much more than its files a series archive may weigh: the download stops past that (a misbehaving or
# compromised source must not fill the dataset volume). Orthanc's archive of a series (ArchiveJob) is the series'
# stored files as deflated ZIP members (ZIP64 only past ≈ 2 GB or 65,000 files), each named "<PatientID
# PatientName>/<AccessionNumber StudyDescription>/<Modality SeriesDescription>/<XY>NNNNNN.dcm": under 700 bytes, as
# those values are at most 64 characters a component.
#: Per member: local header 30 + data descriptor ≤ 24 + central directory entry 46 bytes, ZIP64 extra fields
#: ≤ 2 × 32, and the name twice; 4 KiB leaves a name three times the longest Orthanc writes.
ZIP_MEMBER_OVERHEAD = 4096
#: Deflate expands what it cannot compress: zlib's deflateBound is n + n/4096 + n/16384 + n/2^25 + 13 for n bytes
#: (the 13 fit in the member overhead); n/2048 is more than the three fractions together.
DEFLATE_EXPANSION_DIVISOR = 2048
#: Once per archive: end of central directory 22 + ZIP64 end record 56 + its locator 20 bytes, and a comment of
#: at most 64 KiB (Orthanc writes none).
ZIP_ARCHIVE_SLACK = 128 * 1024
#: Compression methods read (Orthanc's and the stdlib's writers use these): bzip2 and LZMA members would be
#: decompressed by ``zipfile`` without an output bound per read, so an archive using them is refused unread.
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

_SOP_INSTANCE_UID = 0x00080018
_SERIES_INSTANCE_UID = 0x0020000E  # the last tag either reader needs: SOPInstanceUID (0008,0018) comes before it
_TRANSFER_SYNTAX_UID = 0x00020010
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
#: Data sets the direct reader leaves to pydicom: big endian (retired) and deflated (the data set is compressed).
_NOT_READ_DIRECTLY = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})
#: Explicit VRs with a 4-byte length after two reserved bytes (PS3.5 §7.1.2, Table 7.1-1).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_UNDEFINED_LENGTH = 0xFFFFFFFF


class ResearchOrthancSource:
    def __init__(self, client: OrthancClient) -> None:
        self._client = client

    async def study_id(self, study_uid: str) -> str | None:
        return await self._client.find_study(study_uid)

    async def series_instances(self, orthanc_study_id: str) -> dict[str, SourceSeries]:
        """``/studies/{id}/series`` (SeriesInstanceUID per Orthanc series) and ``/studies/{id}/instances``
        (SOPInstanceUID and parent series per instance): two requests per study."""
        series = await self._client.get_json(f"studies/{orthanc_study_id}/series")
        instances = await self._client.get_json(f"studies/{orthanc_study_id}/instances")
        uid_of = {s["ID"]: s["MainDicomTags"]["SeriesInstanceUID"] for s in series}
        found: dict[str, list[tuple[str, str]]] = {}
        orthanc_ids: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for instance in instances:
            series_uid = uid_of.get(instance["ParentSeries"])
            sop_uid = instance.get("MainDicomTags", {}).get("SOPInstanceUID")
            if series_uid and sop_uid:
                found.setdefault(series_uid, []).append((instance["ID"], sop_uid))
                orthanc_ids[series_uid] = instance["ParentSeries"]
                if isinstance(instance.get("FileSize"), int):
                    sizes[sop_uid] = instance["FileSize"]
        return {uid: SourceSeries(orthanc_ids[uid], tuple(pairs), {sop: sizes[sop] for _, sop in pairs if sop in sizes})
                for uid, pairs in found.items()}

    async def fetch(self, instance_id: str, target: Path) -> None:
        try:
            data = await self._client.instance_file(instance_id)
        except OrthancNotFound:
            raise SourceMismatch(f"instance {instance_id} is no longer in the research Orthanc") from None
        await asyncio.to_thread(write_file_atomically, target, data)

    async def fetch_series(self, series: SourceSeries, series_uid: str, targets: Mapping[str, Path]) -> None:
        """One ``/series/{id}/archive`` streamed to a ``*.part`` file beside the targets, at most
        :func:`archive_size_limit` of the series' listed file sizes, then unpacked member by member (see
        :func:`unpack_series_archive`); the archive file is removed in any case.

        Only for a series of which Orthanc lists every file's size: without them neither the download nor a member
        can be bounded, so such a series is left to the instance-by-instance path (ArchiveUnusable) rather than
        bounded by a guess. Orthanc lists ``FileSize`` for every instance it stores (1.10 and 1.12)."""
        if not targets:
            return
        listed = [series.file_sizes.get(sop) for _, sop in series.instances]
        if None in listed:
            raise ArchiveUnusable(f"Orthanc lists no file size for {listed.count(None)} of the {len(listed)} "
                                  f"instances of series {series_uid}: its archive cannot be bounded")
        limit = archive_size_limit(size for size in listed if size is not None)
        directory = next(iter(targets.values())).parent
        directory.mkdir(parents=True, exist_ok=True)
        archive = directory / ARCHIVE_PART
        try:
            try:
                await self._client.download_archive("series", series.orthanc_id, archive, limit=limit)
            except OrthancNotFound:
                raise SourceMismatch(f"series {series_uid} is no longer in the research Orthanc") from None
            except (OrthancUnavailable, OrthancAnswerTooLarge) as exc:
                # Cut short, refused or too large: the caller fetches the series instance by instance instead (if
                # Orthanc is down, those fail and the pass is retried); retrying the archive alone could fail forever.
                raise ArchiveUnusable(f"the archive of series {series_uid} could not be downloaded: {exc}") from None
            await asyncio.to_thread(unpack_series_archive, archive, series_uid, targets, series.file_sizes)
        finally:
            archive.unlink(missing_ok=True)


def archive_size_limit(file_sizes: Iterable[int]) -> int:
    """The most bytes an archive of files of these sizes can take in Orthanc's ZIP (see the constants above)."""
    sizes = list(file_sizes)
    total = sum(sizes)
    return total + total // DEFLATE_EXPANSION_DIVISOR + len(sizes) * ZIP_MEMBER_OVERHEAD + ZIP_ARCHIVE_SLACK


def unpack_series_archive(archive: Path, series_uid: str, targets: Mapping[str, Path],
                          sizes: Mapping[str, int]) -> None:
    """Write every member whose SOPInstanceUID is in ``targets`` to its target, each complete or not at all.

    ``sizes`` are the file sizes Orthanc lists for the series' instances (SOPInstanceUID → bytes). Member names in
    Orthanc's archives are not UIDs, so each member is identified by its content, and bounded before any of it is
    decompressed: a member whose ZIP header declares more bytes than the largest listed file makes the archive
    unusable; one whose declared size is that of no instance still wanted is skipped unread (an instance stored
    after the listing, say). Any other is copied (streamed, never more than its declared size, the ZIP's CRC-32
    checked at its end) to a ``*.part`` file; fewer bytes than declared make the archive unusable. Its
    SOPInstanceUID and SeriesInstanceUID are read from the data set's first bytes (:func:`part10_uids`, directly:
    pydicom's reader took most of the unpacking time, decision 0130), with pydicom where that reader cannot; a
    member of another series makes the archive unusable, as does one whose size differs from the one listed for
    its instance. It is then renamed to its target; members not asked for are dropped. A truncated or corrupt
    archive, a member that is not DICOM, of another method than stored or deflated raises
    :class:`ArchiveUnusable`; files renamed before that are complete and right.
    """
    largest = max(sizes.values(), default=-1)
    wanted = Counter(sizes[sop] for sop in targets if sop in sizes)  # sizes of the targets not written yet
    written: set[str] = set()
    part = archive.with_name(MEMBER_PART)
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                if member.is_dir():
                    continue
                if member.compress_type not in _METHODS:
                    raise ArchiveUnusable(f"the archive of series {series_uid} uses ZIP compression method "
                                          f"{member.compress_type}, not stored or deflated")
                if member.file_size > largest:
                    raise ArchiveUnusable(f"the archive of series {series_uid} declares a member of "
                                          f"{member.file_size} bytes, more than any file Orthanc lists ({largest})")
                if not wanted[member.file_size]:
                    continue
                head = _copy_member(zipped, member, part, series_uid)
                sop_uid, member_series = part10_uids(head) or _uids_read_by_pydicom(part)
                if member_series != series_uid:
                    raise ArchiveUnusable(f"the archive of series {series_uid} holds a file of another series")
                target = targets.get(sop_uid)
                if target is None or sop_uid in written:
                    part.unlink()
                    continue
                if sizes.get(sop_uid) != member.file_size:
                    raise ArchiveUnusable(f"the archive of series {series_uid} holds instance {sop_uid} with "
                                          f"{member.file_size} bytes, Orthanc lists {sizes.get(sop_uid)}")
                os.replace(part, target)
                written.add(sop_uid)
                wanted[member.file_size] -= 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, InvalidDicomError, zlib.error, RuntimeError,
            NotImplementedError) as exc:  # zlib: a corrupt deflate stream; Runtime/NotImplemented: encrypted, method
        raise ArchiveUnusable(f"the archive of series {series_uid} is unreadable ({type(exc).__name__}: "
                              f"{str(exc)[:120]})") from None
    finally:
        part.unlink(missing_ok=True)


def _copy_member(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, part: Path, series_uid: str) -> bytes:
    """Copy one member to ``part``, at most its declared size (``ZipExtFile`` stops there too, and checks the
    CRC-32 once it has given that many bytes); return its first :data:`HEAD` bytes. A deflate stream that ends
    early ends the member early without an error (its CRC-32 can be right for what it holds): fewer bytes than
    declared are an :class:`ArchiveUnusable` here."""
    declared = member.file_size
    with zipped.open(member) as source, open(part, "wb") as sink:
        head = source.read(min(HEAD, declared))
        sink.write(head)
        copied = len(head)
        while copied < declared:
            chunk = source.read(min(CHUNK, declared - copied))
            if not chunk:
                break
            sink.write(chunk)
            copied += len(chunk)
    if copied != declared:
        raise ArchiveUnusable(f"the archive of series {series_uid} holds a member of {copied} bytes where its ZIP "
                              f"header declares {declared}")
    return head


def part10_uids(head: bytes) -> tuple[str, str | None] | None:
    """(SOPInstanceUID, SeriesInstanceUID) of a Part-10 file's data set from its first bytes, or None where
    pydicom must read it: no Part-10 start, a big-endian or deflated data set, an undefined length (a sequence)
    before SeriesInstanceUID, or a header longer than ``head``. SeriesInstanceUID is None if the data set has none.

    PS3.10 §7.1: a 128-byte preamble, ``DICM``, the file meta group 0002 (always explicit VR little endian) with
    the TransferSyntaxUID of the data set that follows; PS3.5 §7: elements in ascending tag order, explicit VR
    with a 2-byte length or, for the long VRs, two reserved bytes and a 4-byte length; implicit VR with a 4-byte
    length. The data set's UIDs, not the meta's MediaStorageSOPInstanceUID: they are what Orthanc indexes and
    lists, and what the pydicom path reads. One ``unpack_from`` per element (≈ 40 before SeriesInstanceUID in a
    CT): this runs once per file of every archive."""
    if head[128:132] != b"DICM":
        return None
    syntax, position = None, 132
    while True:
        element = _element(head, position, True)
        if element is None:
            return None
        tag, start, length = element
        if tag >> 16 != 0x0002:
            break
        if tag == _TRANSFER_SYNTAX_UID:
            syntax = _text(head[start:start + length])
        position = start + length
    if syntax is None or syntax in _NOT_READ_DIRECTLY:
        return None
    explicit = syntax != _IMPLICIT_VR_LITTLE_ENDIAN
    element = _element(head, position, explicit)  # the data set's first element, in its own encoding
    sop_uid = None
    while element is not None:
        tag, position, length = element
        if tag > _SERIES_INSTANCE_UID:
            return (sop_uid, None) if sop_uid else None
        if length == _UNDEFINED_LENGTH or position + length > len(head):
            return None
        if tag == _SOP_INSTANCE_UID:
            sop_uid = _text(head[position:position + length])
        elif tag == _SERIES_INSTANCE_UID:
            return (sop_uid, _text(head[position:position + length])) if sop_uid else None
        element = _element(head, position + length, explicit)
    return None


_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_LONG_LENGTH = struct.Struct("<I")


def _element(head: bytes, position: int, explicit: bool) -> tuple[int, int, int] | None:
    """(tag, value start, value length) of the little-endian element at ``position``, None past ``head``."""
    if position + 8 > len(head):
        return None
    if not explicit:
        group, number, length = _IMPLICIT_HEADER.unpack_from(head, position)
        return group << 16 | number, position + 8, length
    group, number, vr, length = _EXPLICIT_HEADER.unpack_from(head, position)
    if vr not in _LONG_VRS:
        return group << 16 | number, position + 8, length
    if position + 12 > len(head):
        return None
    return group << 16 | number, position + 12, _LONG_LENGTH.unpack_from(head, position + 8)[0]


def _text(value: bytes) -> str:
    return value.rstrip(b"\0 ").decode("ascii", "replace")


def _uids_read_by_pydicom(path: Path) -> tuple[str, str | None]:
    """The slow path, for a member the direct reader leaves (see :func:`part10_uids`)."""
    with open(path, "rb") as handle:
        header = read_partial(handle, stop_when=lambda tag, vr, length: tag > _SERIES_INSTANCE_UID)
    return str(header.get("SOPInstanceUID", "")), header.get("SeriesInstanceUID")
