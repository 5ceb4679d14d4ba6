"""Audit: consumes every domain topic and every dead-letter topic; one record per event."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage, KafkaRouter
from pymongo.asynchronous.collection import AsyncCollection
from typing import Annotated

from eucaim_node.events import DOMAIN_TOPICS, dead_letter_topic
from eucaim_node.runtime import CONSUMER_ACK_POLICY, build_app, create_broker, ensure_topics
from eucaim_node.store import collections, connect, insert_once, ping

from .config import AuditSettings
from .core.records import KafkaPosition, audit_record

NAME = "audit"
GROUP = "audit"
#: Consumer groups whose dead letters are audited (audit's own are not: it cannot audit itself).
AUDITED_DEAD_LETTER_TOPICS = tuple(dead_letter_topic(g) for g in ("anonymisation", "metadata", "catalogue-sync"))

log = logging.getLogger("eucaim_node.audit")
router = KafkaRouter()


@router.subscriber(*DOMAIN_TOPICS, *AUDITED_DEAD_LETTER_TOPICS, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY,
                   auto_offset_reset="earliest", description="Append one audit record per event.")
async def on_any_event(message: KafkaMessage, records: Annotated[AsyncCollection, Context("audit_records")]) -> None:
    raw = message.raw_message
    headers = {k: v.decode(errors="replace") for k, v in (raw.headers or ())}
    record = audit_record(raw.value or b"", headers, KafkaPosition(raw.topic, raw.partition, raw.offset), datetime.now(UTC))
    if await insert_once(records, record):
        log.info("audit record appended", extra={"action": record["action"], "record_id": record["_id"], "entity": record["entity"]})


def create_app(settings: AuditSettings) -> AsgiFastStream:
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)

    async def start() -> None:
        await ensure_topics(settings, (*AUDITED_DEAD_LETTER_TOPICS, dead_letter_topic(GROUP)))

    async def stop() -> None:
        await mongo.close()

    app = build_app(broker, checks=[("mongodb", lambda: ping(db))], on_startup=[start], on_shutdown=[stop])
    app.context.set_global("audit_records", db[collections.AUDIT_RECORDS])
    return app
