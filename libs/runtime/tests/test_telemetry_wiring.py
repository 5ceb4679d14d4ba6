"""The broker the services use is traced and counted: FastStream's test broker, an in-memory exporter."""

from __future__ import annotations

import uuid

import pytest
from faststream.kafka import KafkaRouter, TestKafkaBroker
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eucaim_node.events import StudyAnonymised, StudyReceived
from eucaim_node.runtime import CONSUMER_ACK_POLICY, EventPublisher, KafkaSettings, create_broker
from eucaim_node.runtime.app import build_app, consumer_groups
from eucaim_node.telemetry import configure_tracing, metrics

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider():
    provider = configure_tracing("unit", exporters=[EXPORTER], instrument=False)
    yield provider


def _value(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _received(n: int = 1) -> StudyReceived:
    return StudyReceived.create(cause=f"unit-{uuid.uuid4()}", producer="reception", study_key=f"2.25.{n}",
                                orthanc_study_id="0" * 8 + "-00000000" * 4, orthanc_last_update="20260101T000000",
                                series=(), series_count=0, instance_count=0)


def _app(fail_times: int):
    router = KafkaRouter()
    publish = EventPublisher(router, StudyAnonymised)
    calls = []
    published = []

    @router.subscriber(StudyAnonymised.TOPIC, group_id="watcher", ack_policy=CONSUMER_ACK_POLICY)
    async def watch(body: dict) -> None:
        published.append(body)

    @router.subscriber(StudyReceived.TOPIC, group_id="unit-group", ack_policy=CONSUMER_ACK_POLICY)
    async def handle(event: StudyReceived) -> None:
        calls.append(event.event_id)
        if len(calls) <= fail_times:
            raise ValueError("cannot handle this")
        await publish(StudyAnonymised.create(
            cause=event, producer="unit-service", study_key=event.study_key, research_study_id="1" * 8 + "-11111111" * 4,
            subject_key="EUCAIM-LOCAL-1", series_count=1, instance_count=7, quarantined_count=0))

    settings = KafkaSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_retry_backoff_seconds=0,
                             kafka_security_protocol="PLAINTEXT", kafka_allow_insecure_plaintext=True)
    broker = create_broker(settings, service="unit-service", dead_letter_topic="eucaim.dlq.unit-group.v1")
    broker.include_router(router)
    return broker, calls, published


async def test_one_message_is_one_trace_with_the_publication_inside_the_handler_span(provider):
    EXPORTER.clear()
    broker, _, published = _app(fail_times=0)
    handled = _value("eucaim_events_handled_total", service="unit-service", topic=StudyReceived.TOPIC)
    released = _value("eucaim_instances_deidentified_total", service="unit-service")
    async with TestKafkaBroker(broker) as test_broker:
        with configure_tracing_span("reception") as root:
            await test_broker.publish(_received(), StudyReceived.TOPIC, key=b"2.25.1")
    provider.force_flush()
    spans = EXPORTER.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {root.get_span_context().trace_id}
    by_name = {s.name: s for s in spans}
    process = by_name[f"{StudyReceived.TOPIC} process"]
    publish = by_name[f"{StudyAnonymised.TOPIC} publish"]
    ancestors = _ancestors(publish, spans)
    assert process.context.span_id in ancestors
    assert process.attributes["messaging.kafka.message.key"] == "2.25.1"
    # The envelope names the span that published it, so the audit record links to the trace.
    [event] = published
    assert event["traceparent"].split("-")[1] == format(root.get_span_context().trace_id, "032x")
    assert _value("eucaim_events_handled_total", service="unit-service", topic=StudyReceived.TOPIC) == handled + 1
    assert _value("eucaim_instances_deidentified_total", service="unit-service") == released + 7


async def test_a_poison_message_counts_its_failures_and_its_dead_letter_in_the_same_trace(provider):
    EXPORTER.clear()
    broker, calls, _ = _app(fail_times=10)
    labels = dict(service="unit-service", topic=StudyReceived.TOPIC)
    failed = _value("eucaim_events_failed_total", kind="error", **labels)
    dead = _value("eucaim_events_dead_lettered_total", **labels)
    histogram = _value("eucaim_event_handling_seconds_count", outcome="failure", **labels)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(_received(2), StudyReceived.TOPIC, key=b"2.25.2")
    provider.force_flush()
    assert len(calls) == 3
    assert _value("eucaim_events_failed_total", kind="error", **labels) == failed + 3
    assert _value("eucaim_events_dead_lettered_total", **labels) == dead + 1
    assert _value("eucaim_event_handling_seconds_count", outcome="failure", **labels) == histogram + 3
    spans = EXPORTER.get_finished_spans()
    process = next(s for s in spans if s.name == f"{StudyReceived.TOPIC} process")
    dlq = next(s for s in spans if s.name == "eucaim.dlq.unit-group.v1 publish")
    assert dlq.context.trace_id == process.context.trace_id
    assert process.context.span_id in _ancestors(dlq, spans)


def test_build_app_serves_metrics_and_knows_the_consumer_groups():
    broker, _, _ = _app(fail_times=0)
    assert consumer_groups(broker) == {"unit-group": (StudyReceived.TOPIC,), "watcher": (StudyAnonymised.TOPIC,)}
    app = build_app(broker)
    assert "/metrics" in [path for path, _ in app.routes]


def _ancestors(span, spans):
    by_id = {s.context.span_id: s for s in spans}
    found, current = [], span
    while current.parent is not None:
        found.append(current.parent.span_id)
        current = by_id.get(current.parent.span_id)
        if current is None:
            break
    return found


def configure_tracing_span(name):
    from opentelemetry import trace

    return trace.get_tracer("unit").start_as_current_span(name)
