"""Index one de-identified study from the research Orthanc into the catalogue; remove withdrawn subjects."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from eucaim_node.catalogue.coding import CodingTables
from eucaim_node.catalogue.config import CollectionsConfig
from eucaim_node.catalogue.documents import RemovedStudy, StudyDocument
from eucaim_node.catalogue.quality import assess_series, is_image, study_summary
from eucaim_node.catalogue.rules import StudyFacts, assign_collection
from eucaim_node.catalogue.screening import ScreeningFacts, screening_context
from eucaim_node.events import (
    Event,
    SeriesPixelCheck,
    StudyAnonymised,
    StudyIndexed,
    StudyRemoved,
    WithdrawalRequested,
)
from eucaim_node.orthanc import OrthancNotFound

from ..ports import CatalogueWriter, ResearchArchive, StudyIndexedPublisher, StudyRemovedPublisher
from .documents import series_document, study_document
from .evidence import study_evidence

log = logging.getLogger("eucaim_node.metadata")
PRODUCER = "metadata"
#: Instances whose pixel data are decoded at once (each is one request to the research Orthanc).
DECODE_CONCURRENCY = 4


class StudyIndexer:
    def __init__(self, research: ResearchArchive, catalogue: CatalogueWriter, publish: StudyIndexedPublisher,
                 *, default_collection: str, config: CollectionsConfig, publish_removed: StudyRemovedPublisher,
                 tables: CodingTables | None = None) -> None:
        config.require_default(default_collection)
        self._research = research
        self._catalogue = catalogue
        self._publish = publish
        self._publish_removed = publish_removed
        self._default_collection = default_collection
        self._config = config
        self._tables = tables or CodingTables.bundled()

    async def index(self, event: StudyAnonymised) -> None:
        try:
            study = await self._research.study(event.research_study_id)
        except OrthancNotFound:
            # Removed since (e.g. a withdrawal): the catalogue must not resurrect it.
            log.warning("de-identified study no longer in the research Orthanc", extra={"study_key": event.study_key})
            return
        subject_key = study.get("PatientMainDicomTags", {}).get("PatientID") or event.subject_key
        if await self._catalogue.is_withdrawn(subject_key):
            log.info("study of a withdrawn subject not catalogued", extra={"study_key": event.study_key})
            return
        series_docs, first_tags, read = [], {}, []
        judged = {check.research_series_id: check for check in event.native_pixels}
        description = study.get("MainDicomTags", {}).get("StudyDescription")
        for series_id in study["Series"]:
            try:
                series = await self._research.series(series_id)
            except OrthancNotFound:
                continue
            if not series.get("Instances"):
                continue
            tags = await self._research.instance_tags(series["Instances"][0])
            first_tags = first_tags or tags
            every = await self._research.series_instances_tags(series_id)
            read += every.values()  # screening evidence: procedure codes, mammography views, report assessments
            series_docs.append(series_document(series, tags, study_key=event.study_key, subject_key=subject_key,
                                               study_description=description, tables=self._tables))
            series_docs[-1].quality = await self._series_quality(every, judged.get(series_id))
        facts = StudyFacts.of((s.modality for s in series_docs), (s.body_part for s in series_docs),
                              description, event.calling_aet)
        collection_id = assign_collection(self._config, facts, self._default_collection)
        collection = self._config.collection(collection_id)
        evidence = study_evidence(read)
        context = screening_context(self._config.screening, ScreeningFacts.of(
            calling_aet=event.calling_aet, department=event.department, procedure_codes=evidence["procedure_codes"],
            description=description, modalities=facts.modalities, mg_views=evidence["mg_views"],
            regions=(c for s in series_docs for c in s.body_region_codes), assessments=evidence["assessments"],
        ), collection.condition if collection else None)
        study_doc = study_document(
            study, series_docs, first_tags, study_key=event.study_key, collection_id=collection_id,
            indexed_at=datetime.now(UTC), source_event_id=str(event.event_id),
            condition=context.condition(collection.condition if collection else None), tables=self._tables,
            screening=context, assessments=evidence["assessments"],
        )
        study_doc.quality = study_summary(s.quality for s in series_docs)
        await self._catalogue.replace_study(study_doc, series_docs)
        await self._catalogue.refresh_subject(study_doc.subject_key, study_doc.key)
        # A withdrawal may have been recorded while this study was being written: check again, after the
        # write, so that whichever of the two ran second removes the study (no interleaving leaves it).
        if await self._catalogue.is_withdrawn(study_doc.subject_key):
            await self._remove(study_doc, cause=event)
            return
        await self._publish(StudyIndexed.create(
            cause=event, producer=PRODUCER, study_key=event.study_key,
            collection_id=study_doc.collection_id, subject_key=study_doc.subject_key,
            series_count=study_doc.series_count, instance_count=study_doc.instance_count,
            modalities=tuple(study_doc.modalities), body_parts=tuple(study_doc.body_parts),
        ))
        log.info("study indexed", extra={"study_key": event.study_key, "collection_id": collection_id,
                                         "series": study_doc.series_count, "instances": study_doc.instance_count,
                                         "quality_flags": study_doc.quality["flags"]})

    async def _series_quality(self, tags: dict[str, dict[str, Any]], judged: SeriesPixelCheck | None) -> dict[str, Any]:
        """The series' data quality (catalogue.quality) from every instance's tags, and whether each image's pixel
        data decode: as anonymisation judged them (native pixel data long enough, decision 0131) when it judged as
        many images as the research Orthanc now lists, else asked of Orthanc, each image decoded once."""
        images = [instance for instance, t in sorted(tags.items()) if is_image(t)]
        if judged is not None and judged.images_judged == len(images):
            return assess_series(tags.values(), undecodable=judged.incomplete).document()
        limit = asyncio.Semaphore(DECODE_CONCURRENCY)

        async def decodes(instance_id: str) -> bool:
            async with limit:
                return await self._research.decodes(instance_id)

        undecodable = sum(not ok for ok in await asyncio.gather(*(decodes(i) for i in images)))
        return assess_series(tags.values(), undecodable=undecodable).document()

    async def withdraw(self, event: WithdrawalRequested) -> None:
        """Remove every catalogued study of the subject; idempotent (tombstones drive the announcements)."""
        now = datetime.now(UTC)
        await self._catalogue.record_withdrawal(event.subject_key, now, str(event.event_id))
        for study in await self._catalogue.studies_of(event.subject_key):
            await self._catalogue.remove_study(study, now)
        await self._catalogue.refresh_subject(event.subject_key)
        removed = await self._catalogue.removed_studies_of(event.subject_key)
        for tombstone in removed:
            await self._announce(tombstone, cause=event)
        log.info("withdrawn subject removed from the catalogue", extra={"studies": len(removed)})

    async def _remove(self, study: StudyDocument, *, cause: Event) -> None:
        await self._catalogue.remove_study(study, datetime.now(UTC))
        await self._catalogue.refresh_subject(study.subject_key, study.key)
        await self._announce(study, cause=cause)

    async def _announce(self, study: StudyDocument | RemovedStudy, *, cause: Event) -> None:
        # One event per (cause, study): a redelivered cause announces the same removals with the same IDs.
        await self._publish_removed(StudyRemoved.create(
            cause=(cause, study.key), producer=PRODUCER, study_key=study.key, subject_key=study.subject_key,
            collection_id=study.collection_id,
        ))
        log.info("study removed from the catalogue", extra={"study_key": study.key, "collection_id": study.collection_id})
