"""The research Orthanc as the dataset's only image source (REST present in Orthanc 1.10 and 1.12)."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial

from eucaim_node.datasets.layout import write_file_atomically
from eucaim_node.orthanc import OrthancClient, OrthancNotFound, OrthancUnavailable

from ..ports import ArchiveUnusable, SourceMismatch, SourceSeries

#: Temporary names inside the series directory; ``*.part`` is what the materialiser drops before sealing.
ARCHIVE_PART = ".archive.zip.part"
MEMBER_PART = ".member.part"
#: Bytes of a member kept in memory to read its header from; a header longer than that is read from the file.
HEAD = 64 * 1024
_SERIES_INSTANCE_UID = 0x0020000E  # the last tag the slow path reads: SOPInstanceUID (0008,0018) comes before it
_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"})


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
        """One ``/series/{id}/archive`` streamed to a ``*.part`` file beside the targets, then unpacked member by
        member (see :func:`unpack_series_archive`); the archive file is removed in any case."""
        if not targets:
            return
        directory = next(iter(targets.values())).parent
        directory.mkdir(parents=True, exist_ok=True)
        archive = directory / ARCHIVE_PART
        try:
            try:
                await self._client.download_archive("series", series.orthanc_id, archive)
            except OrthancNotFound:
                raise SourceMismatch(f"series {series_uid} is no longer in the research Orthanc") from None
            except OrthancUnavailable as exc:
                # Cut short or refused: the caller fetches the series instance by instance instead (if Orthanc is
                # down, those fetches fail and the pass is retried); retrying the archive alone could fail forever.
                raise ArchiveUnusable(f"the archive of series {series_uid} could not be downloaded: {exc}") from None
            await asyncio.to_thread(unpack_series_archive, archive, series_uid, targets, series.file_sizes)
        finally:
            archive.unlink(missing_ok=True)


def unpack_series_archive(archive: Path, series_uid: str, targets: Mapping[str, Path],
                          sizes: Mapping[str, int] | None = None) -> None:
    """Write every member whose SOPInstanceUID is in ``targets`` to its target, each complete or not at all.

    Member names in Orthanc's archives are not UIDs, so each member is identified by its content: its size is
    compared with what Orthanc lists for that instance (``sizes``), it is copied (streamed, the ZIP's CRC-32
    checked at its end) to a ``*.part`` file, and renamed to ``<SOPInstanceUID>.dcm`` from its Part-10 header.
    The header is read from the member's first bytes: the file meta information's MediaStorageSOPInstanceUID
    (PS3.10 §7.1, which names the instance of the data set in the file), parsed directly because pydicom's reader
    took most of the unpacking time (decision 0130); a file without a readable meta group is read with pydicom.
    Members not asked for (the targets are this series' instances) are dropped. A truncated or corrupt archive,
    a member that is not DICOM or whose size differs from Orthanc's raises :class:`ArchiveUnusable`; files
    renamed before that are complete and right.
    """
    sizes = sizes or {}
    part = archive.with_name(MEMBER_PART)
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                if member.is_dir():
                    continue
                with zipped.open(member) as source, open(part, "wb") as sink:
                    head = source.read(HEAD)
                    sink.write(head)
                    shutil.copyfileobj(source, sink, 1 << 20)
                sop_uid = media_sop_instance_uid(head) or _sop_instance_uid_read_by_pydicom(part, series_uid)
                target = targets.get(sop_uid)
                if target is None:
                    part.unlink()
                    continue
                if sop_uid in sizes and sizes[sop_uid] != member.file_size:
                    raise ArchiveUnusable(f"the archive of series {series_uid} holds instance {sop_uid} with "
                                          f"{member.file_size} bytes, Orthanc lists {sizes[sop_uid]}")
                os.replace(part, target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, InvalidDicomError, zlib.error, RuntimeError,
            NotImplementedError) as exc:  # zlib: a corrupt deflate stream; Runtime/NotImplemented: encrypted, method
        raise ArchiveUnusable(f"the archive of series {series_uid} is unreadable ({type(exc).__name__}: "
                              f"{str(exc)[:120]})") from None
    finally:
        part.unlink(missing_ok=True)


def media_sop_instance_uid(head: bytes) -> str | None:
    """MediaStorageSOPInstanceUID (0002,0003) of a Part-10 file from its first bytes, or None if they are not
    a Part-10 start. PS3.10 §7.1: a 128-byte preamble, ``DICM``, then the group 0002 elements, always explicit
    VR little endian (PS3.5 §7.1.2: OB, OW, OF, SQ, UT, UN have a 4-byte length after two reserved bytes)."""
    if head[128:132] != b"DICM":
        return None
    position = 132
    while position + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, position)
        if group != 0x0002:
            return None
        if head[position + 4:position + 6] in _LONG_VRS:
            if position + 12 > len(head):
                return None
            length, position = struct.unpack_from("<I", head, position + 8)[0], position + 12
        else:
            length, position = struct.unpack_from("<H", head, position + 6)[0], position + 8
        if element == 0x0003:
            value = head[position:position + length]
            return value.rstrip(b"\0 ").decode("ascii", "replace") if len(value) == length else None
        position += length
    return None


def _sop_instance_uid_read_by_pydicom(path: Path, series_uid: str) -> str:
    """The slow path for a member without a readable file meta group; it must be of this series."""
    with open(path, "rb") as handle:
        header = read_partial(handle, stop_when=lambda tag, vr, length: tag > _SERIES_INSTANCE_UID)
    if header.get("SeriesInstanceUID") != series_uid:
        raise ArchiveUnusable(f"the archive of series {series_uid} holds a file of another series")
    return str(header.get("SOPInstanceUID", ""))
