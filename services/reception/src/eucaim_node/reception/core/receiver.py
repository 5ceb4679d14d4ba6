"""Follow the clinical Orthanc's change feed and announce each stable study once per state.

Orthanc's ``/changes`` is a log with a sequence number, but Orthanc may delete old rows: the
node keeps its own cursor and never relies on Orthanc's history being complete. When the
cursor is missing (first start) or the feed shows a gap after it, the receiver reconciles:
it lists every stable study and announces those whose current state it has not announced.

"Stable" only means no new instance for ``StableAge`` seconds; a late instance makes the
study stable again with a new ``LastUpdate``, and that state is announced as an update.
A study state is identified by (Orthanc study ID, LastUpdate), so announcing the same state
twice (after a crash between publish and bookkeeping) yields the same event ID.
"""

from __future__ import annotations

import logging
from typing import Any

from eucaim_node.deid import pseudonymise_uid
from eucaim_node.events import SeriesRef, StudyReceived
from eucaim_node.orthanc import OrthancNotFound
from eucaim_node.telemetry import tracer

from ..ports import ClinicalArchive, ReceptionLedger, StudyReceivedPublisher

log = logging.getLogger("eucaim_node.reception")

PRODUCER = "reception"


def study_received_event(study: dict[str, Any], series: list[dict[str, Any]], *, key: bytes) -> StudyReceived:
    """Build the announcement of one study state: Orthanc IDs and counts only, no identifiers."""
    refs = tuple(SeriesRef(orthanc_series_id=s["ID"], instance_count=len(s.get("Instances", ()))) for s in series)
    return StudyReceived.create(
        cause=f"{study['ID']}@{study['LastUpdate']}",
        producer=PRODUCER,
        study_key=pseudonymise_uid(study["MainDicomTags"]["StudyInstanceUID"], key),
        orthanc_study_id=study["ID"],
        orthanc_last_update=study["LastUpdate"],
        series=refs,
        series_count=len(refs),
        instance_count=sum(r.instance_count for r in refs),
    )


class StudyReceiver:
    def __init__(self, archive: ClinicalArchive, ledger: ReceptionLedger, publish: StudyReceivedPublisher,
                 *, key: bytes, page_size: int = 100) -> None:
        self._archive = archive
        self._ledger = ledger
        self._publish = publish
        self._key = key
        self._page_size = page_size

    async def poll_once(self) -> bool:
        """Process one page of changes; True when the feed is caught up (the caller may wait)."""
        cursor = await self._ledger.load_cursor()
        if cursor is None:
            head = await self._archive.changes(since=0, limit=1)
            await self.reconcile()
            # Everything up to the head was covered by reconciliation (it saw current states).
            await self._ledger.save_cursor(head.last if head.changes or head.last else 0)
            return False
        page = await self._archive.changes(since=cursor, limit=self._page_size)
        if page.changes and page.changes[0].seq > cursor + 1 and cursor > 0:
            log.warning("gap in Orthanc's change feed, reconciling", extra={"cursor": cursor, "next_seq": page.changes[0].seq})
            await self.reconcile()
        elif page.last < cursor:
            log.warning("Orthanc's change feed restarted below the cursor, reconciling", extra={"cursor": cursor, "last": page.last})
            await self.reconcile()
            await self._ledger.save_cursor(page.last)
            return False
        for change in page.changes:
            if change.change_type == "StableStudy":
                await self.receive(change.resource_id)
        if page.last != cursor:
            await self._ledger.save_cursor(page.last)
        return page.done

    async def receive(self, orthanc_study_id: str) -> StudyReceived | None:
        """Announce the study's current state unless already announced; None if gone or unchanged.

        One span per study state: the root of the study's trace (Orthanc reads, publication).
        """
        with tracer("eucaim_node.reception").start_as_current_span(
                "receive study", attributes={"orthanc.study_id": orthanc_study_id}) as span:
            event = await self._receive(orthanc_study_id)
            if event is not None:
                span.set_attribute("eucaim.study_key", event.study_key)
            return event

    async def _receive(self, orthanc_study_id: str) -> StudyReceived | None:
        try:
            study = await self._archive.study(orthanc_study_id)
            series = [await self._archive.series(s) for s in study["Series"]]
        except OrthancNotFound:
            log.info("study deleted before it could be received", extra={"orthanc_study_id": orthanc_study_id})
            return None
        if await self._ledger.was_received(orthanc_study_id, study["LastUpdate"]):
            return None
        event = study_received_event(study, series, key=self._key)
        await self._publish(event)
        await self._ledger.mark_received(event)
        log.info(
            "study received",
            extra={"study_key": event.study_key, "orthanc_study_id": orthanc_study_id,
                   "series": event.series_count, "instances": event.instance_count, "event_id": str(event.event_id)},
        )
        return event

    async def reconcile(self) -> int:
        """Announce every stable study whose current state was not announced; returns how many."""
        announced = 0
        for study_id in await self._archive.study_ids():
            try:
                study = await self._archive.study(study_id)
            except OrthancNotFound:
                continue
            if study.get("IsStable") and await self.receive(study_id) is not None:
                announced += 1
        return announced
