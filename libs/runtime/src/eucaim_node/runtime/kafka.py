"""The Kafka broker every service uses, and topic provisioning."""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

from eucaim_node.events import Event, StudyAnonymised, StudyQuarantined
from eucaim_node.telemetry import current_traceparent, metrics

from .delivery import DeliveryPolicy, dead_letter_middleware
from .settings import KafkaSettings

log = logging.getLogger("eucaim_node.kafka")

#: The settings and service name each broker was created with (build_app measures consumer lag with them).
BROKER_SETTINGS: weakref.WeakKeyDictionary[KafkaBroker, tuple[KafkaSettings, str]] = weakref.WeakKeyDictionary()


def create_broker(settings: KafkaSettings, *, service: str, dead_letter_topic: str | None) -> KafkaBroker:
    """A broker with an idempotent producer (acks=all) and, for consumers, dead-lettering.

    ``service`` is the client id; ``dead_letter_topic`` is the consumer group's DLQ (None for a
    service that only publishes).

    Middlewares, outermost first: FastStream's Kafka telemetry middleware (a consumer span per
    message, continuing the trace from the message's ``traceparent`` header; a producer span per
    publication, whose context goes into the headers), then dead-lettering. So retries, the
    handler's Orthanc and MongoDB calls and a dead-letter publication are all inside the span of
    the message that caused them: one study, one trace, from reception to audit.
    """
    middlewares: list = [KafkaTelemetryMiddleware()]
    broker_ref: list[KafkaBroker] = []
    if dead_letter_topic is not None:
        policy = DeliveryPolicy(
            dead_letter_topic=dead_letter_topic,
            max_attempts=settings.kafka_max_attempts,
            retry_backoff_seconds=settings.kafka_retry_backoff_seconds,
            transient_backoff_max_seconds=settings.kafka_transient_backoff_max_seconds,
        )
        # The middleware publishes dead letters through the broker it belongs to.
        middlewares.append(dead_letter_middleware(policy, lambda *a, **kw: broker_ref[0].publish(*a, **kw),
                                                  service=service))
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=settings.kafka_broker_security(),
        client_id=f"eucaim-node-{service}",
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        graceful_timeout=30.0,
        middlewares=middlewares,
        logger=logging.getLogger(f"eucaim_node.{service}.broker"),
    )
    broker_ref.append(broker)
    BROKER_SETTINGS[broker] = (settings, service)
    return broker


class TopicsMissing(RuntimeError):
    """Topics a process needs do not exist and its principal may not create them."""


async def ensure_topics(settings: KafkaSettings, topics: Iterable[str]) -> None:
    """Make sure ``topics`` exist (idempotent; every service calls it at start with the topics it uses).

    Missing topics are created when the principal may (an insecure PLAINTEXT development Kafka, the super
    user). A least-privilege principal may not (decision 0060): the stack, or the operator in production,
    provisions the topics first, and a topic still missing is a :class:`TopicsMissing` naming it.
    """
    wanted = set(topics)
    admin = AIOKafkaAdminClient(**settings.kafka_client_options(), client_id="eucaim-node-admin")
    await admin.start()
    try:
        missing = sorted(wanted - set(await admin.list_topics()))
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
            await admin.create_topics(
                [
                    NewTopic(name=t, num_partitions=settings.kafka_topic_partitions,
                             replication_factor=settings.kafka_replication_factor)
                    for t in missing
                ]
            )
        still_missing = sorted(wanted - set(await admin.list_topics()))
        if still_missing:
            raise TopicsMissing(f"Kafka topics {', '.join(still_missing)} do not exist and principal "
                                f"{settings.kafka_sasl_username or 'ANONYMOUS'} may not create them; provision "
                                "them first (eucaim-node kafka provision-script, docs/operations.md)")
        log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()


def count_published(event: Event) -> None:
    """Prometheus counters of one acknowledged publication (and of the instances it reports)."""
    service = event.producer
    metrics.EVENTS_PUBLISHED.labels(service, event.event_type).inc()
    if isinstance(event, StudyAnonymised):
        metrics.INSTANCES_DEIDENTIFIED.labels(service).inc(event.instance_count)
    elif isinstance(event, StudyQuarantined):
        metrics.count_quarantined(service, (i.reason for i in event.instances), event.quarantined_count)


def with_trace_context(event: Event) -> Event:
    """The event with ``traceparent`` set to the current span (unless it has one): audit records keep it."""
    if event.traceparent is not None:
        return event
    traceparent = current_traceparent()
    return event if traceparent is None else event.model_copy(update={"traceparent": traceparent})


class EventPublisher:
    """Publishes one event type on its topic, keyed so one study's events stay in order.

    Declared on a router at import time, so the AsyncAPI document lists every publication.
    The envelope's ``traceparent`` is the span that published it (the Kafka headers carry the
    producer span's context too, which is what the next consumer continues).
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
        event = with_trace_context(event)
        await self._publisher.publish(
            event, key=event.partition_key(), headers={"eucaim-event-type": event.event_type},
            correlation_id=str(event.event_id),
        )
        count_published(event)


async def publish_events(settings: KafkaSettings, *events: Event, client: str = "cli") -> None:
    """Publish events from a process that is not a FastStream service (the CLI, a one-off job).

    Same guarantees as the services' publishers: idempotent producer, acks=all, keyed by the event.
    A publication inside a span carries its context, in the envelope and in the headers.
    """
    from aiokafka import AIOKafkaProducer
    from opentelemetry.propagate import inject

    await ensure_topics(settings, {e.TOPIC for e in events})
    producer = AIOKafkaProducer(**settings.kafka_client_options(), client_id=f"eucaim-node-{client}",
                                enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            event = with_trace_context(event)
            carrier: dict[str, str] = {}
            inject(carrier)
            await producer.send_and_wait(
                event.TOPIC, event.model_dump_json().encode(), key=event.partition_key(),
                headers=[("eucaim-event-type", event.event_type.encode()), ("content-type", b"application/json"),
                         *((k, v.encode()) for k, v in carrier.items())],
            )
    finally:
        await producer.stop()
