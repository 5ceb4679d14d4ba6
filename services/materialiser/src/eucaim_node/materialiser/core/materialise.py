"""Materialise a dataset into the dataset root; remove the files of deleted or withdrawn versions.

Crash safety (decision 0080): everything is written under ``<root>/.staging/<id>/``; each instance file is written
as ``<name>.part`` and renamed, so a file with its final name is complete and a restart skips it. When every file
is there, ``index.json``, ``eforms.json``, the hashes and the BagIt bag are written, the tree is made read-only and
renamed to ``<root>/<id>``; only then is the creation marked done. A restart finds the dataset ``running`` and
carries on from what is on disk: no half dataset is ever visible under its ID, and no file is fetched twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from eucaim_node.datasets import audit
from eucaim_node.datasets.integrity import measure, write_bag
from eucaim_node.datasets.layout import (
    EFORMS, INDEX, DatasetRoot, dump_json, eforms_entries, index_entries, instance_relpath, make_read_only,
    make_writable, remove_tree, write_file_atomically)
from eucaim_node.datasets.model import Creation, Dataset, now
from eucaim_node.datasets.ports import DatasetStore, StaleDataset
from eucaim_node.events import AccessRecorded

from ..ports import ArchiveUnusable, ClinicalData, ImageSource, SourceMismatch, SourceSeries

log = logging.getLogger("eucaim_node.materialiser")
PRODUCER = "materialiser"

__all__ = ["Materialiser", "SourceMismatch"]


async def _all(awaitables: Iterable[Awaitable[None]]) -> None:
    """Await every one, then raise the first failure: when a fetch fails, no other is still writing into the
    staging directory that the failure handling may remove."""
    for outcome in await asyncio.gather(*awaitables, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


@dataclass(frozen=True)
class SeriesToFetch:
    """What is still missing of one series: SOPInstanceUID → (Orthanc instance ID, target path)."""

    series_uid: str
    source: SourceSeries
    missing: dict[str, tuple[str, Path]]

    @property
    def untouched(self) -> bool:
        """Nothing of the series is on disk yet: one archive fetches it all, and fetches no file twice."""
        return len(self.missing) == len(self.source.instances)


@dataclass
class Materialiser:
    store: DatasetStore
    source: ImageSource
    clinical: ClinicalData
    root: DatasetRoot
    publish: Callable[[AccessRecorded], Awaitable[None]]
    concurrency: int = 6
    #: Whole series as one archive each (decision 0130); off, every instance alone.
    series_archives: bool = True
    #: Held while one dataset's files are written or removed: withdrawal never races a materialisation.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- one pass of the worker -----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Materialise every pending or interrupted dataset, clean up deleted ones; return how many were handled."""
        handled = 0
        for dataset in await self.store.list():
            if dataset.deleted or dataset.invalidated:
                if dataset.creation in (Creation.PENDING, Creation.RUNNING) or self._has_files(dataset.id):
                    await self.discard(dataset)
                    handled += 1
            elif dataset.creation in (Creation.PENDING, Creation.RUNNING):
                await self.materialise(dataset)
                handled += 1
        return handled

    def _has_files(self, dataset_id: str) -> bool:
        return any(p.exists() for p in (self.root.dataset_dir(dataset_id), self.root.staging_dir(dataset_id),
                                       self.root.bag_dir(dataset_id)))

    async def discard(self, dataset: Dataset) -> None:
        """Remove every file of a deleted or invalidated-with-files version; stop its creation if it was running."""
        async with self.lock:
            await asyncio.to_thread(self._remove_files, dataset.id)
            if dataset.creation in (Creation.PENDING, Creation.RUNNING):
                reason = "deleted" if dataset.deleted else f"invalidated ({dataset.invalidation_reason})"
                try:
                    await self.store.update(dataset.id, {"creation": dataset.creation.value},
                                            {"creation": Creation.ERROR, "creation_error": reason})
                except StaleDataset:
                    pass

    def _remove_files(self, dataset_id: str) -> None:
        for path in (self.root.dataset_dir(dataset_id), self.root.bag_dir(dataset_id),
                     self.root.bag_dir(dataset_id).with_name(dataset_id + ".tmp"), self.root.staging_dir(dataset_id)):
            remove_tree(path)

    # -- materialisation ------------------------------------------------------------------------------------

    async def materialise(self, dataset: Dataset) -> None:
        async with self.lock:
            try:
                dataset = await self.store.update(dataset.id, {"creation": dataset.creation.value, "invalidated": False,
                                                               "deleted": False}, {"creation": Creation.RUNNING})
            except StaleDataset:
                return  # invalidated or deleted meanwhile: the next pass discards it
            try:
                count = await self._write(dataset)
            except SourceMismatch as exc:
                await asyncio.to_thread(self._remove_files, dataset.id)
                await self.store.update(dataset.id, {"creation": Creation.RUNNING.value},
                                        {"creation": Creation.ERROR, "creation_error": str(exc)[:500]})
                await self.publish(audit.record(producer=PRODUCER, actor=PRODUCER, action=audit.CREATE_DATASET,
                                                dataset_id=dataset.id, cause=f"materialised:{dataset.id}",
                                                outcome="failure", reason=str(exc)[:300]))
                log.warning("dataset creation failed", extra={"dataset": dataset.id, "error": str(exc)[:300]})
                return
            log.info("dataset materialised", extra={"dataset": dataset.id, "instances": count})

    async def _write(self, dataset: Dataset) -> int:
        final = self.root.dataset_dir(dataset.id)
        staging = self.root.staging_dir(dataset.id)
        if not final.is_dir():
            if staging.exists():
                await asyncio.to_thread(make_writable, staging)  # a crash after chmod, before the rename
            staging.mkdir(parents=True, exist_ok=True)
            count = await self._fetch_all(dataset, staging)
            await self._write_metadata(dataset, staging)
            await asyncio.to_thread(self._seal, dataset, staging)
            os.chmod(staging, 0o755)  # moving a directory to another parent rewrites its ".." entry
            os.rename(staging, final)
            os.chmod(final, 0o555)
        else:
            count = sum(1 for _ in final.rglob("*.dcm"))
        measured = await asyncio.to_thread(measure, final, index_entries(dataset))
        if not self.root.bag_dir(dataset.id).is_dir():
            await asyncio.to_thread(self._bag, dataset, final, measured)
        await self.store.update(dataset.id, {"creation": Creation.RUNNING.value, "invalidated": False},
                                {"creation": Creation.DONE, "hashes": measured.hashes, "materialised_at": now(),
                                 "creation_error": None})
        await self.publish(audit.record(
            producer=PRODUCER, actor=PRODUCER, action=audit.CREATE_DATASET, dataset_id=dataset.id,
            cause=f"materialised:{dataset.id}", operation=audit.MATERIALISED, instances=count,
            files=measured.hashes.files, bytes=measured.hashes.bytes, images_sha3=measured.hashes.images))
        return count

    async def _fetch_all(self, dataset: Dataset, staging: Path) -> int:
        """Fetch what is not on disk yet (decision 0130): a series of which nothing is there comes as one
        ``/series/{id}/archive``; a series left half-done by a crash, or whose archive is unusable, gets its
        missing instances one by one. ``concurrency`` requests at a time either way; no file is fetched twice."""
        plan: list[SeriesToFetch] = []
        count = 0
        for study in dataset.studies:
            orthanc_study = await self.source.study_id(study.study_uid)
            if orthanc_study is None:
                raise SourceMismatch(f"study {study.study_uid} is not in the research Orthanc")
            series_of_study = await self.source.series_instances(orthanc_study)
            for series_uid in study.series:
                source = series_of_study.get(series_uid)
                if source is None or not source.instances:
                    raise SourceMismatch(f"series {series_uid} of study {study.study_uid} is not in the research "
                                         "Orthanc")
                count += len(source.instances)
                targets = {sop: (instance_id, staging / instance_relpath(study, series_uid, sop))
                           for instance_id, sop in source.instances}
                missing = {sop: pair for sop, pair in targets.items() if not pair[1].is_file()}
                if missing:
                    plan.append(SeriesToFetch(series_uid, source, missing))
        gate = asyncio.Semaphore(self.concurrency)

        async def fetch_instance(instance_id: str, target: Path) -> None:
            async with gate:
                await self.source.fetch(instance_id, target)

        async def fetch_series(series: SeriesToFetch) -> None:
            if self.series_archives and series.untouched and len(series.missing) > 1:
                async with gate:
                    try:
                        await self.source.fetch_series(series.source, series.series_uid,
                                                       {sop: target for sop, (_, target) in series.missing.items()})
                    except ArchiveUnusable as exc:
                        log.warning("series archive unusable; fetching its instances one by one",
                                    extra={"dataset": dataset.id, "error": str(exc)[:300]})
            await _all(fetch_instance(instance_id, target)
                       for instance_id, target in series.missing.values() if not target.is_file())

        await _all(fetch_series(series) for series in plan)
        return count

    async def _write_metadata(self, dataset: Dataset, staging: Path) -> None:
        eforms = await self.clinical.eforms(list(dataset.subjects))
        write_file_atomically(staging / INDEX, dump_json(index_entries(dataset)))
        write_file_atomically(staging / EFORMS, dump_json(eforms_entries(dataset, eforms)))

    @staticmethod
    def _seal(dataset: Dataset, staging: Path) -> None:
        """Drop leftovers of an interrupted write (``*.part``), then make the tree read-only."""
        for part in staging.rglob("*.part"):
            part.unlink()
        make_read_only(staging)

    def _bag(self, dataset: Dataset, final: Path, measured) -> None:
        bag = self.root.bag_dir(dataset.id)
        tmp = bag.with_name(dataset.id + ".tmp")
        remove_tree(tmp)
        write_bag(tmp, final, measured, dataset_id=dataset.id, version=dataset.version)
        make_read_only(tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, bag)
        os.chmod(bag, 0o555)
