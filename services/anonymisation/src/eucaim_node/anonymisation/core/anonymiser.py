"""De-identify one received study into the research Orthanc: the node's PHI boundary.

Each instance is fetched from the clinical Orthanc, de-identified by the pure engine
(``eucaim_node.deid``) and, only if the engine released it, stored in the research Orthanc.
Everything else is quarantined with its reasons; the original stays in the clinical Orthanc.
De-identification is deterministic (keyed HMAC), so processing the same study again stores
identical instances (Orthanc overwrites them) and publishes events with the same IDs.

Where the files go (decision 0132): the port ``DeidentifyInstance`` (worker processes in production) fetches,
de-identifies and stores an instance itself once this study has *cleared* its subject, i.e. checked that the
subject has not withdrawn; until then, and for any other subject, it hands the de-identified bytes back and the
checks below decide. So the study's first instance goes this way alone, and the rest follow with its subject.

Consent withdrawal: an instance whose subject (its pseudonym) has withdrawn is never stored, and
the withdrawal is checked again after storing, so a withdrawal recorded meanwhile removes what this
study stored (whichever of the two runs second cleans up). A withdrawal deletes the subject's
studies from the research Orthanc (only this service writes or deletes there).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from eucaim_node.events import (
    QuarantinedInstance,
    SeriesPixelCheck,
    StudyAnonymised,
    StudyQuarantined,
    StudyReceived,
    StudyWithdrawn,
    StudyWithheld,
    WithdrawalRequested,
)
from eucaim_node.orthanc import OrthancNotFound, StoredInstance

from ..ports import (
    ClinicalArchive,
    DeidentifyInstance,
    InstanceOutcome,
    Publishers,
    QuarantineLog,
    ResearchArchive,
    Withdrawals,
)

log = logging.getLogger("eucaim_node.anonymisation")

PRODUCER = "anonymisation"
#: Events list at most this many quarantined instances (the quarantine log has them all).
MAX_LISTED_QUARANTINED = 100


@dataclass(frozen=True)
class Released:
    stored: StoredInstance
    subject_key: str
    #: the engine's judgement of the instance's native pixel data (DeidResult.native_pixels_complete)
    native_pixels_complete: bool | None = None


@dataclass(frozen=True)
class Quarantined:
    instance: QuarantinedInstance


@dataclass(frozen=True)
class Withheld:
    subject_key: str


def native_pixel_checks(released: Iterable[Released]) -> tuple[SeriesPixelCheck, ...]:
    """Per research series, the instances judged and found incomplete: only series whose every released instance
    was judged (a compressed, exotic or non-image instance leaves its series to the research Orthanc's decoder)."""
    judged: dict[str, list[bool | None]] = defaultdict(list)
    for r in released:
        judged[r.stored.series_id].append(r.native_pixels_complete)
    return tuple(SeriesPixelCheck(research_series_id=series_id, images_judged=len(found),
                                  incomplete=sum(ok is False for ok in found))
                 for series_id, found in sorted(judged.items()) if None not in found)


@dataclass
class _StudyChecks:
    """What this run of a study has learnt about its subjects."""

    withdrawn: dict[str, bool] = field(default_factory=dict)
    #: a subject checked not withdrawn: its instances are stored by the port itself
    cleared_subject: str | None = None


def quarantine_entry(instance_id: str, result: InstanceOutcome) -> QuarantinedInstance:
    first = result.reasons[0] if result.reasons else None
    return QuarantinedInstance(
        orthanc_instance_id=instance_id,
        reason=first.code if first else "unknown",
        element=(first.keyword or first.tag) if first else None,
        detail=("; ".join(r.message for r in result.reasons))[:500],
    )


class StudyAnonymiser:
    def __init__(self, clinical: ClinicalArchive, research: ResearchArchive, deidentify: DeidentifyInstance,
                 quarantine: QuarantineLog, publish: Publishers, *, withdrawals: Withdrawals,
                 concurrency: int = 8) -> None:
        self._clinical = clinical
        self._research = research
        self._deidentify = deidentify
        self._quarantine = quarantine
        self._publish = publish
        self._slots = asyncio.Semaphore(concurrency)
        self._withdrawals = withdrawals

    async def anonymise(self, event: StudyReceived) -> None:
        try:
            instance_ids = await self._clinical.study_instance_ids(event.orthanc_study_id)
        except OrthancNotFound:
            log.warning("study no longer in the clinical Orthanc; nothing to anonymise",
                        extra={"study_key": event.study_key, "orthanc_study_id": event.orthanc_study_id})
            return
        checks = _StudyChecks()
        # The first instance alone: its subject, once checked, is the cleared subject the others are sent with.
        outcomes = [await self._one(event, i, checks) for i in instance_ids[:1]]
        outcomes += await asyncio.gather(*(self._one(event, i, checks) for i in instance_ids[1:]))
        released = [o for o in outcomes if isinstance(o, Released)]
        quarantined = [o.instance for o in outcomes if isinstance(o, Quarantined)]
        withheld = [o for o in outcomes if isinstance(o, Withheld)]
        # Checked again now that the instances are stored: a withdrawal recorded meanwhile wins.
        subjects = {r.subject_key for r in released}
        if released and any([await self._withdrawals.is_withdrawn(s) for s in subjects]):
            for study_id in {r.stored.study_id for r in released}:
                await self._research.delete_study(study_id)
            withheld += [Withheld(r.subject_key) for r in released]
            released = []
        if withheld:
            await self._publish.withheld(StudyWithheld.create(
                cause=event, producer=PRODUCER, study_key=event.study_key, subject_key=withheld[0].subject_key))
            log.info("study of a withdrawn subject withheld", extra={"study_key": event.study_key,
                                                                     "withheld": len(withheld)})

        for entry in quarantined:
            await self._quarantine.record(event.study_key, entry, str(event.event_id))
        calling_aet = await self._clinical.calling_aet(instance_ids[0]) if released and instance_ids else None
        department = await self._clinical.department(instance_ids[0]) if released and instance_ids else None
        if released:
            research_study_ids = {r.stored.study_id for r in released}
            if len(research_study_ids) != 1:
                raise RuntimeError(f"de-identified study split into {len(research_study_ids)} research studies")
            await self._publish.anonymised(StudyAnonymised.create(
                cause=event, producer=PRODUCER, study_key=event.study_key,
                research_study_id=research_study_ids.pop(),
                subject_key=released[0].subject_key,
                series_count=len({r.stored.series_id for r in released}),
                instance_count=len(released),
                quarantined_count=len(quarantined),
                calling_aet=calling_aet,
                department=department,
                native_pixels=native_pixel_checks(released),
            ))
        if quarantined:
            await self._publish.quarantined(StudyQuarantined.create(
                cause=event, producer=PRODUCER, study_key=event.study_key,
                quarantined_count=len(quarantined),
                instances=tuple(quarantined[:MAX_LISTED_QUARANTINED]),
            ))
        log.info("study anonymised", extra={"study_key": event.study_key, "released": len(released),
                                            "quarantined": len(quarantined)})

    async def _is_withdrawn(self, subject_key: str, seen: dict[str, bool]) -> bool:
        if subject_key not in seen:
            seen[subject_key] = await self._withdrawals.is_withdrawn(subject_key)
        return seen[subject_key]

    async def withdraw(self, event: WithdrawalRequested) -> None:
        """Record the withdrawal, then delete the subject's studies from the research Orthanc (idempotent).

        Each deletion is announced before it is made: a crash in between announces it again (same event
        ID) and deletes on redelivery; announcing after would lose the announcement.
        """
        await self._withdrawals.record(event.subject_key, str(event.event_id))
        study_ids = await self._research.subject_study_ids(event.subject_key)
        for study_id in study_ids:
            study_key = await self._research.study_key(study_id)
            if study_key is not None:
                await self._publish.withdrawn(StudyWithdrawn.create(
                    cause=(event, study_key), producer=PRODUCER, study_key=study_key, subject_key=event.subject_key))
            await self._research.delete_study(study_id)
        log.info("withdrawn subject removed from the research Orthanc", extra={"studies": len(study_ids)})

    async def _one(self, event: StudyReceived, instance_id: str,
                   checks: _StudyChecks) -> Released | Quarantined | Withheld | None:
        async with self._slots:  # bounds the files in flight (memory), wherever they are
            outcome = await self._deidentify(instance_id, study_key=event.study_key,
                                             cleared_subject=checks.cleared_subject)
            if outcome is None:
                return None  # deleted meanwhile: nothing to release
            if outcome.replaced:  # values the engine could not keep or shift (codes only, never values)
                log.info("values replaced by the Basic Profile action", extra={
                    "study_key": event.study_key, "orthanc_instance_id": instance_id,
                    "codes": ",".join(sorted({r.code for r in outcome.replaced}))})
            if not outcome.released:
                return Quarantined(quarantine_entry(instance_id, outcome))
            if outcome.study_instance_uid != event.study_key:
                # The study key is the pseudonym of the StudyInstanceUID Orthanc indexed; a
                # mismatch means the file disagrees with Orthanc's index: hold it back.
                return Quarantined(QuarantinedInstance(
                    orthanc_instance_id=instance_id, reason="study-key-mismatch", element="StudyInstanceUID",
                    detail="de-identified StudyInstanceUID differs from the study key of the received study"))
            subject_key = outcome.patient_pseudonym or ""
            if outcome.stored is not None:  # the port stored it: its subject was the cleared one
                return Released(outcome.stored, subject_key, outcome.native_pixels_complete)
            if await self._is_withdrawn(subject_key, checks.withdrawn):
                return Withheld(subject_key)
            if outcome.data is None:
                raise RuntimeError("a released instance came back neither stored nor with its bytes")
            stored = await self._research.store(outcome.data)
            if subject_key and checks.cleared_subject is None:
                checks.cleared_subject = subject_key
            return Released(stored, subject_key, outcome.native_pixels_complete)
