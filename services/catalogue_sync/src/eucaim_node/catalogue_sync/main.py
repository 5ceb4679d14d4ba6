"""Catalogue-sync: consumes ``StudyIndexed``, keeps collection aggregates, publishes ``CollectionUpdated``."""

from __future__ import annotations

from typing import Annotated

from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.events import CollectionUpdated, StudyIndexed, dead_letter_topic
from eucaim_node.runtime import CONSUMER_ACK_POLICY, EventPublisher, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping

from .adapters.collection_store import MongoCollectionStore
from .config import CatalogueSyncSettings
from .core.aggregates import CollectionAggregator

NAME = "catalogue-sync"
GROUP = "catalogue-sync"

router = KafkaRouter()
publish_collection_updated = EventPublisher(router, CollectionUpdated)


@router.subscriber(StudyIndexed.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest",
                   description="Recompute the aggregates of the study's collection.")
async def on_study_indexed(event: StudyIndexed, aggregator: Annotated[CollectionAggregator, Context("aggregator")]) -> None:
    await aggregator.refresh(event)


def create_app(settings: CatalogueSyncSettings) -> AsgiFastStream:
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    aggregator = CollectionAggregator(MongoCollectionStore(db), publish_collection_updated)

    async def start() -> None:
        await ensure_topics(settings, (dead_letter_topic(GROUP),))

    async def stop() -> None:
        await mongo.close()

    app = build_app(broker, checks=[("mongodb", lambda: ping(db))], on_startup=[start], on_shutdown=[stop])
    app.context.set_global("aggregator", aggregator)
    return app
