"""Reception: follows the clinical Orthanc's change feed and publishes ``StudyReceived``."""

from __future__ import annotations

import asyncio
import logging

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.deid import load_key
from eucaim_node.events import StudyReceived, grant
from eucaim_node.orthanc import OrthancClient
from eucaim_node.runtime import EventPublisher, backoff_delay, build_app, create_broker, ensure_topics, is_transient
from eucaim_node.store import connect, ping

from .adapters.ledger import MongoReceptionLedger
from .config import ReceptionSettings
from .core.receiver import StudyReceiver

NAME = "reception"
log = logging.getLogger("eucaim_node.reception")

router = KafkaRouter()
publish_study_received = EventPublisher(router, StudyReceived)


async def follow_changes(receiver: StudyReceiver, interval: float, max_backoff: float) -> None:
    """Poll forever; while a dependency is down, back off instead of crashing."""
    failures = 0
    while True:
        try:
            caught_up = await receiver.poll_once()
            failures = 0
        except Exception as exc:
            failures += 1
            delay = backoff_delay(failures, first=2 * interval, cap=max_backoff)
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            log.log(level, "polling the clinical Orthanc failed, retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_in_s": delay}, exc_info=level >= logging.ERROR)
            await asyncio.sleep(delay)
            continue
        if caught_up:
            await asyncio.sleep(interval)


def create_app(settings: ReceptionSettings) -> AsgiFastStream:
    broker = create_broker(settings, service=NAME, dead_letter_topic=None)
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    archive = OrthancClient(settings.clinical_orthanc())
    receiver = StudyReceiver(archive, MongoReceptionLedger(db), publish_study_received,
                             key=load_key(settings.hmac_key_file), page_size=settings.reception_changes_page_size)
    tasks: list[asyncio.Task] = []

    async def start() -> None:
        await ensure_topics(settings, grant(NAME).topics)

    async def start_following() -> None:
        tasks.append(asyncio.create_task(
            follow_changes(receiver, settings.reception_poll_interval_seconds, settings.kafka_transient_backoff_max_seconds),
            name="follow-changes"))

    async def stop() -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await mongo.close()

    return build_app(
        broker,
        checks=[("mongodb", lambda: ping(db)), ("clinical_orthanc", archive.system)],
        on_startup=[start],
        after_startup=[start_following],
        on_shutdown=[stop],
    )
