"""Anonymisation: consumes ``StudyReceived``, fills the research Orthanc, publishes the outcome."""

from __future__ import annotations

from typing import Annotated

from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.deid import load_key
from eucaim_node.events import (
    StudyAnonymised,
    StudyQuarantined,
    StudyReceived,
    StudyWithdrawn,
    StudyWithheld,
    WithdrawalRequested,
    dead_letter_topic,
    grant,
    consumer_group,
)
from eucaim_node.runtime import CONSUMER_ACK_POLICY, EventPublisher, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping
from eucaim_node.store.collections import ANONYMISATION_WITHDRAWALS
from eucaim_node.store.withdrawals import MongoWithdrawalList

from .adapters.deid_pool import DeidentifierPool, available_cores
from .adapters.orthancs import ClinicalOrthanc, ResearchOrthanc
from .adapters.quarantine import MongoQuarantineLog
from .config import AnonymisationSettings
from .core.anonymiser import StudyAnonymiser

NAME = "anonymisation"
GROUP = consumer_group(NAME)

router = KafkaRouter()


class _Publishers:
    anonymised = EventPublisher(router, StudyAnonymised)
    quarantined = EventPublisher(router, StudyQuarantined)
    withheld = EventPublisher(router, StudyWithheld)
    withdrawn = EventPublisher(router, StudyWithdrawn)


@router.subscriber(StudyReceived.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest",
                   description="De-identify the study into the research Orthanc.")
async def on_study_received(event: StudyReceived, anonymiser: Annotated[StudyAnonymiser, Context("anonymiser")]) -> None:
    await anonymiser.anonymise(event)


@router.subscriber(WithdrawalRequested.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY,
                   auto_offset_reset="earliest",
                   description="Record a consent withdrawal; delete the subject's studies from the research Orthanc.")
async def on_withdrawal_purge_research_archive(event: WithdrawalRequested,
                                  anonymiser: Annotated[StudyAnonymiser, Context("anonymiser")]) -> None:
    await anonymiser.withdraw(event)


def create_app(settings: AnonymisationSettings) -> AsgiFastStream:
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    clinical = ClinicalOrthanc(settings.clinical_orthanc())
    research = ResearchOrthanc(settings.research_orthanc())
    deidentify = DeidentifierPool(load_key(settings.hmac_key_file), site_prefix=settings.site_prefix, profile=settings.profile(),
                                  clinical=settings.clinical_orthanc(), research=settings.research_orthanc(),
                                  workers=settings.anonymisation_workers or available_cores(), traced_as=NAME)
    anonymiser = StudyAnonymiser(clinical, research, deidentify, MongoQuarantineLog(db), _Publishers(),
                                 withdrawals=MongoWithdrawalList(db[ANONYMISATION_WITHDRAWALS]), concurrency=settings.anonymisation_concurrency)

    async def start() -> None:
        await ensure_topics(settings, grant(NAME).topics)
        await deidentify.start()

    async def stop() -> None:
        deidentify.close()
        await mongo.close()

    app = build_app(
        broker,
        checks=[("mongodb", lambda: ping(db)), ("clinical_orthanc", clinical.system), ("research_orthanc", research.system)],
        on_startup=[start],
        on_shutdown=[stop],
    )
    app.context.set_global("anonymiser", anonymiser)
    return app
