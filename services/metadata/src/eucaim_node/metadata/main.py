"""Metadata: consumes ``StudyAnonymised``, writes catalogue documents, publishes ``StudyIndexed``.

Also consumes ``WithdrawalRequested``: removes the subject's studies from the catalogue and
publishes ``StudyRemoved`` for each, so catalogue-sync recomputes and republishes the collections.
"""

from __future__ import annotations

from typing import Annotated

from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.events import (
    StudyAnonymised,
    StudyIndexed,
    StudyRemoved,
    WithdrawalRequested,
    consumer_group,
    dead_letter_topic,
    grant,
)
from eucaim_node.orthanc import OrthancClient
from eucaim_node.runtime import CONSUMER_ACK_POLICY, EventPublisher, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping

from .adapters.catalogue import MongoCatalogue
from .config import MetadataSettings
from .core.indexer import StudyIndexer

NAME = "metadata"
GROUP = consumer_group(NAME)

router = KafkaRouter()
publish_study_indexed = EventPublisher(router, StudyIndexed)
publish_study_removed = EventPublisher(router, StudyRemoved)


@router.subscriber(StudyAnonymised.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest",
                   description="Write the study's catalogue documents, in the collection its rules choose.")
async def on_study_anonymised(event: StudyAnonymised, indexer: Annotated[StudyIndexer, Context("indexer")]) -> None:
    await indexer.index(event)


@router.subscriber(WithdrawalRequested.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY,
                   auto_offset_reset="earliest", description="Remove a withdrawn subject's studies from the catalogue.")
async def on_withdrawal_remove_from_catalogue(event: WithdrawalRequested, indexer: Annotated[StudyIndexer, Context("indexer")]) -> None:
    await indexer.withdraw(event)


def create_app(settings: MetadataSettings) -> AsgiFastStream:
    config = settings.collections_config()
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    research = OrthancClient(settings.research_orthanc())
    catalogue = MongoCatalogue(db)
    indexer = StudyIndexer(research, catalogue, publish_study_indexed, default_collection=settings.default_collection,
                           config=config, publish_removed=publish_study_removed)

    async def start() -> None:
        await ensure_topics(settings, grant(NAME).topics)
        await catalogue.ensure_indexes()

    async def stop() -> None:
        await mongo.close()

    app = build_app(broker, checks=[("mongodb", lambda: ping(db)), ("research_orthanc", research.system)],
                    on_startup=[start], on_shutdown=[stop])
    app.context.set_global("indexer", indexer)
    return app
