"""Index one de-identified study from the research Orthanc into the catalogue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from eucaim_node.events import StudyAnonymised, StudyIndexed
from eucaim_node.orthanc import OrthancNotFound

from ..ports import Catalogue, ResearchArchive, StudyIndexedPublisher
from .documents import series_document, study_document

log = logging.getLogger("eucaim_node.metadata")
PRODUCER = "metadata"


class StudyIndexer:
    def __init__(self, research: ResearchArchive, catalogue: Catalogue, publish: StudyIndexedPublisher,
                 *, default_collection: str) -> None:
        self._research = research
        self._catalogue = catalogue
        self._publish = publish
        self._default_collection = default_collection

    async def index(self, event: StudyAnonymised) -> None:
        try:
            study = await self._research.study(event.research_study_id)
        except OrthancNotFound:
            # Removed since (e.g. a withdrawal): the catalogue must not resurrect it.
            log.warning("de-identified study no longer in the research Orthanc", extra={"study_key": event.study_key})
            return
        series_docs, first_tags = [], {}
        for series_id in study["Series"]:
            series = await self._research.series(series_id)
            if not series.get("Instances"):
                continue
            tags = await self._research.instance_tags(series["Instances"][0])
            first_tags = first_tags or tags
            series_docs.append(series_document(series, tags, study_key=event.study_key))
        study_doc = study_document(
            study, series_docs, first_tags, study_key=event.study_key, collection_id=self._default_collection,
            indexed_at=datetime.now(UTC), source_event_id=str(event.event_id),
        )
        await self._catalogue.replace_study(study_doc, series_docs)
        await self._publish(StudyIndexed.create(
            cause=event, producer=PRODUCER, study_key=event.study_key,
            collection_id=study_doc["collection_id"], subject_key=study_doc["subject_key"],
            series_count=study_doc["series_count"], instance_count=study_doc["instance_count"],
            modalities=tuple(study_doc["modalities"]), body_parts=tuple(study_doc["body_parts"]),
        ))
        log.info("study indexed", extra={"study_key": event.study_key, "series": study_doc["series_count"],
                                         "instances": study_doc["instance_count"]})
