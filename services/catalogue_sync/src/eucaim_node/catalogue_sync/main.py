"""Catalogue-sync: collection aggregates, HealthDCAT-AP publication (Tier 1) and the federated search (Tier 2).

Consumes ``StudyIndexed`` and ``StudyRemoved``: recomputes the collection's aggregates, publishes
``CollectionUpdated``, and a new dataset version (``CollectionPublished``) when the published
description changes; an outbox worker delivers versions to the remote catalogue
(``CollectionDelivered``). Its HTTP server (the health port) also serves the search endpoint and
the catalogue (see ``adapters/inbound/http.py``; decisions 0020, 0120).
"""

from __future__ import annotations

import logging
from typing import Annotated

from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.catalogue.store import NoiseSecretOnce, noise_secret, search_fields
from eucaim_node.datasets import MongoDatasetStore
from eucaim_node.events import (
    AccessRecorded,
    CollectionDelivered,
    CollectionPublished,
    CollectionUpdated,
    Event,
    StudyIndexed,
    StudyRemoved,
    dead_letter_topic,
    grant,
    consumer_group,
)
from eucaim_node.runtime import CONSUMER_ACK_POLICY, EventPublisher, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping

from .adapters.collection_store import MongoCollectionStore
from .adapters.inbound.http import PREFIXES, create_http_app
from .adapters.search_index import SearchIndex
from .adapters.remote_catalogue import HttpRemoteCatalogue
from .adapters.versions import MongoVersionStore
from .config import CatalogueSyncSettings
from .core.access import Gate
from .core.aggregates import CollectionAggregator
from .core.federation import FederationReads
from .core.outbox import OutboxWorker
from .core.publication import Coarsening, DatasetPublisher

NAME = "catalogue-sync"
GROUP = consumer_group(NAME)
log = logging.getLogger("eucaim_node.catalogue_sync")

router = KafkaRouter()
publish_collection_updated = EventPublisher(router, CollectionUpdated)
publish_collection_published = EventPublisher(router, CollectionPublished)
publish_collection_delivered = EventPublisher(router, CollectionDelivered)
publish_access = EventPublisher(router, AccessRecorded)


async def publish_any(event: Event) -> None:
    for publisher in (publish_collection_published, publish_collection_delivered, publish_access):
        if isinstance(event, publisher.event_type):
            await publisher(event)
            return
    raise TypeError(f"catalogue-sync does not publish {type(event).__name__}")


@router.subscriber(StudyIndexed.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest",
                   description="Recompute the aggregates of the study's collection; republish it if its description changed.")
async def on_study_indexed(event: StudyIndexed, aggregator: Annotated[CollectionAggregator, Context("aggregator")]) -> None:
    await aggregator.refresh(event)


@router.subscriber(StudyRemoved.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest",
                   description="A study left the catalogue (withdrawal): recompute and republish its collection.")
async def on_study_removed(event: StudyRemoved, aggregator: Annotated[CollectionAggregator, Context("aggregator")]) -> None:
    await aggregator.refresh(event)


def create_app(settings: CatalogueSyncSettings) -> AsgiFastStream:
    config = settings.collections_config()
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    versions = MongoVersionStore(db)
    coarse = Coarsening(settings.catalogue_count_granularity, settings.search_min_count)
    publisher = DatasetPublisher(config, versions, publish_any,
                                 coarse=coarse,
                                 push_configured=settings.catalogue_push_url is not None)
    compiler = QueryCompiler()
    store = MongoCollectionStore(db, row_fields=search_fields(compiler))
    aggregator = CollectionAggregator(store, publish_collection_updated, publisher)
    reads = FederationReads(config, SearchIndex(db), NoiseSecretOnce(db), settings.protection, compiler,
                            versions, publish_any, datasets=MongoDatasetStore(db), coarse=coarse)
    api = create_http_app(reads, Gate(settings.search_tokens(), settings.client_limits()),
                          max_body=settings.federation_max_body_bytes, trusted_proxies=settings.trusted_proxies())
    outbox = None
    if settings.catalogue_push_url:
        remote = HttpRemoteCatalogue(settings.catalogue_push_url, settings.push_token(),
                                     settings.catalogue_push_timeout_seconds)
        outbox = OutboxWorker(versions, remote, publish_any,
                              backoff=settings.catalogue_push_backoff_seconds,
                              backoff_max=settings.catalogue_push_backoff_max_seconds,
                              lease_seconds=max(60.0, settings.catalogue_push_timeout_seconds * 2))

    async def start() -> None:
        await ensure_topics(settings, grant(NAME).topics)
        await versions.ensure_indexes()
        studies = await store.build_parts_if_missing()
        if studies:
            log.info("collection parts built from the catalogue", extra={"studies": studies})
        await noise_secret(db)  # created here, by its one writer, so that readers (the CLI) find it

    async def after_start() -> None:
        if outbox is not None:
            outbox.start()
        try:
            await aggregator.reconcile()
        except Exception as exc:  # MongoDB or Kafka not there yet: the next StudyIndexed/StudyRemoved republishes
            log.warning("startup republication skipped", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})

    async def stop() -> None:
        if outbox is not None:
            await outbox.stop()
        await mongo.close()

    app = build_app(broker, checks=[("mongodb", lambda: ping(db))], mounts=[(p, api) for p in PREFIXES],
                    on_startup=[start], after_startup=[after_start], on_shutdown=[stop])
    app.context.set_global("aggregator", aggregator)
    return app
