"""The Kafka broker every service uses, and topic provisioning."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker

from eucaim_node.events import DOMAIN_TOPICS, Event

from .delivery import DeliveryPolicy, dead_letter_middleware
from .settings import KafkaSettings

log = logging.getLogger("eucaim_node.kafka")


def create_broker(settings: KafkaSettings, *, service: str, dead_letter_topic: str | None) -> KafkaBroker:
    """A broker with an idempotent producer (acks=all) and, for consumers, dead-lettering.

    ``service`` is the client id; ``dead_letter_topic`` is the consumer group's DLQ (None for a
    service that only publishes).
    """
    middlewares = []
    broker_ref: list[KafkaBroker] = []
    if dead_letter_topic is not None:
        policy = DeliveryPolicy(
            dead_letter_topic=dead_letter_topic,
            max_attempts=settings.kafka_max_attempts,
            retry_backoff_seconds=settings.kafka_retry_backoff_seconds,
            transient_backoff_max_seconds=settings.kafka_transient_backoff_max_seconds,
        )
        # The middleware publishes dead letters through the broker it belongs to.
        middlewares.append(dead_letter_middleware(policy, lambda *a, **kw: broker_ref[0].publish(*a, **kw)))
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"eucaim-node-{service}",
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        graceful_timeout=30.0,
        middlewares=middlewares,
        logger=logging.getLogger(f"eucaim_node.{service}.broker"),
    )
    broker_ref.append(broker)
    return broker


async def ensure_topics(settings: KafkaSettings, extra_topics: tuple[str, ...] = ()) -> None:
    """Create the node's topics if missing (idempotent; safe for every service to call at start)."""
    wanted = set(DOMAIN_TOPICS) | set(extra_topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="eucaim-node-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(wanted - existing)
        if not missing:
            return
        try:
            await admin.create_topics(
                [
                    NewTopic(name=t, num_partitions=settings.kafka_topic_partitions,
                             replication_factor=settings.kafka_replication_factor)
                    for t in missing
                ]
            )
        except TopicAlreadyExistsError:
            pass  # another service created them first
        log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()


class EventPublisher:
    """Publishes one event type on its topic, keyed so one study's events stay in order.

    Declared on a router at import time, so the AsyncAPI document lists every publication.
    """

    def __init__(self, registrator, event_type: type[Event]) -> None:
        self.event_type = event_type
        self._publisher = registrator.publisher(
            event_type.TOPIC, schema=event_type, title=f"{event_type.TOPIC}:{event_type.__name__}",
            description=(event_type.__doc__ or "").strip(),
        )

    async def __call__(self, event: Event) -> None:
        if not isinstance(event, self.event_type):
            raise TypeError(f"{type(event).__name__} published on {self.event_type.TOPIC}")
        await self._publisher.publish(
            event, key=event.partition_key(), headers={"eucaim-event-type": event.event_type},
            correlation_id=str(event.event_id),
        )


async def publish_events(settings: KafkaSettings, *events: Event, client: str = "cli") -> None:
    """Publish events from a process that is not a FastStream service (the CLI, a one-off job).

    Same guarantees as the services' publishers: idempotent producer, acks=all, keyed by the event.
    """
    from aiokafka import AIOKafkaProducer

    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, client_id=f"eucaim-node-{client}",
                                enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                event.TOPIC, event.model_dump_json().encode(), key=event.partition_key(),
                headers=[("eucaim-event-type", event.event_type.encode()), ("content-type", b"application/json")],
            )
    finally:
        await producer.stop()
