"""Tracing setup, redaction, log correlation and metric helpers, without any server."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from eucaim_node.telemetry import (
    NoOrphanClientSpans,
    RedactingExporter,
    TelemetryConfigurationError,
    TraceContextFilter,
    configure_logging,
    continuing,
    current_traceparent,
)
from eucaim_node.telemetry import metrics
from eucaim_node.telemetry.tracing import REDACTED, exporters_from_env

OTEL_VARS = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
             "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")


@pytest.fixture
def local_tracing():
    """A private provider (the global one is set once per process) with an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=NoOrphanClientSpans(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(exporter)))
    return provider.get_tracer("test"), exporter


def test_dependency_calls_outside_a_unit_of_work_are_not_traced(local_tracing):
    tracer, exporter = local_tracing
    with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT):  # e.g. a readiness ping
        pass
    with tracer.start_as_current_span("topic process", kind=SpanKind.CONSUMER):
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT):
            pass
    with tracer.start_as_current_span("receive study"):
        pass
    spans = exporter.get_finished_spans()
    assert sorted((s.name, s.kind.name, s.parent is None) for s in spans) == [
        ("GET", "CLIENT", False), ("receive study", "INTERNAL", True), ("topic process", "CONSUMER", True)]


def test_work_continuing_a_traceparent_is_part_of_that_trace(local_tracing):
    """What the anonymisation workers do (decision 0132): the task carries the caller's traceparent, so the
    worker's Orthanc requests are spans of the study's trace (an orphan client span would be dropped)."""
    tracer, exporter = local_tracing
    with tracer.start_as_current_span("topic process", kind=SpanKind.CONSUMER) as consumer:
        traceparent = current_traceparent()
    with continuing(traceparent):  # elsewhere, e.g. in a worker process
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT):
            pass
    with continuing(None), tracer.start_as_current_span("GET", kind=SpanKind.CLIENT):
        pass  # no unit of work: dropped
    (client,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert client.name == "POST" and client.parent.span_id == consumer.get_span_context().span_id
    assert client.context.trace_id == consumer.get_span_context().trace_id


def test_exported_spans_keep_the_exception_type_but_never_its_message(local_tracing):
    tracer, exporter = local_tracing
    with pytest.raises(ValueError):
        with tracer.start_as_current_span("handler"):
            raise ValueError("invalid value 'DOE^JANE' for PatientName")
    [span] = exporter.get_finished_spans()
    text = span.to_json()
    assert "DOE^JANE" not in text
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == REDACTED
    assert "exception.stacktrace" not in event.attributes
    assert span.status.description == "ValueError"


def test_exporters_follow_the_standard_environment(monkeypatch):
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    assert exporters_from_env() == []  # no endpoint: spans stay in-process (trace ids still in logs)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    [otlp] = exporters_from_env()
    assert type(otlp).__name__ == "OTLPSpanExporter"
    assert otlp._endpoint == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert exporters_from_env() == []
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    assert [type(e).__name__ for e in exporters_from_env()] == ["OTLPSpanExporter", "ConsoleSpanExporter"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(TelemetryConfigurationError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        exporters_from_env()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(TelemetryConfigurationError, match="zipkin"):
        exporters_from_env()


def test_log_lines_inside_a_span_carry_its_trace_id(local_tracing, monkeypatch):
    tracer, _ = local_tracing
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("unit-test")
    logger = logging.getLogger("eucaim_node.test")
    logger.info("outside")
    with tracer.start_as_current_span("unit") as span:
        logger.info("inside", extra={"study_key": "2.25.1"})
        expected = format(span.get_span_context().trace_id, "032x")
    outside, inside = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "trace_id" not in outside
    assert inside["trace_id"] == expected and len(inside["span_id"]) == 16
    assert inside["service"] == "unit-test" and inside["study_key"] == "2.25.1"
    assert any(isinstance(f, TraceContextFilter) for f in logging.getLogger().handlers[0].filters)


def _value(name: str, **labels) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_quarantine_counts_by_reason_with_bounded_labels():
    before = {r: _value("eucaim_instances_quarantined_total", service="unit", reason=r)
              for r in ("phi-guard", "burned-in-annotation", "other", "unlisted")}
    guard_before = _value("eucaim_instances_phi_guard_blocked_total", service="unit")
    metrics.count_quarantined("unit", ["phi-guard", "burned-in-annotation", "phi-guard", "Weird Reason: x"], total=6)
    after = {r: _value("eucaim_instances_quarantined_total", service="unit", reason=r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "phi-guard": 2, "burned-in-annotation": 1, "other": 1, "unlisted": 2}
    assert _value("eucaim_instances_phi_guard_blocked_total", service="unit") - guard_before == 2


def test_the_registry_holds_every_metric_of_the_node():
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain") and b"process_cpu_seconds_total" in body
    assert b"_created" not in body  # no creation-time series next to every counter
    families = {family.name: family.type for family in metrics.REGISTRY.collect()}
    assert {name: families.get(name) for name in (
        "eucaim_events_handled", "eucaim_events_failed", "eucaim_events_dead_lettered", "eucaim_events_published",
        "eucaim_instances_deidentified", "eucaim_instances_quarantined", "eucaim_instances_phi_guard_blocked",
        "eucaim_consumer_lag", "eucaim_event_handling_seconds")} == {
        "eucaim_events_handled": "counter", "eucaim_events_failed": "counter", "eucaim_events_dead_lettered": "counter",
        "eucaim_events_published": "counter", "eucaim_instances_deidentified": "counter",
        "eucaim_instances_quarantined": "counter", "eucaim_instances_phi_guard_blocked": "counter",
        "eucaim_consumer_lag": "gauge", "eucaim_event_handling_seconds": "histogram"}


def test_the_test_receiver_decodes_what_the_otlp_exporter_sends(monkeypatch):
    """The receiver used by the trace test against the real stack, fed by the real OTLP/HTTP exporter."""
    import socket

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource

    from eucaim_test_support.otlp import OtlpReceiver

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with OtlpReceiver(port) as receiver:
        provider = TracerProvider(resource=Resource.create({"service.name": "unit"}))
        provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))))
        tracer = provider.get_tracer("unit")
        with tracer.start_as_current_span("parent", attributes={"eucaim.study_key": "2.25.9"}) as parent:
            with pytest.raises(KeyError):
                with tracer.start_as_current_span("child", kind=SpanKind.CLIENT):
                    raise KeyError("MRN-123456")
        spans = receiver.trace(format(parent.get_span_context().trace_id, "032x"))
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"parent", "child"}
    assert by_name["child"].parent_span_id == by_name["parent"].span_id and by_name["child"].kind == "CLIENT"
    assert by_name["parent"].service == "unit" and by_name["parent"].attributes == {"eucaim.study_key": "2.25.9"}
    assert by_name["child"].events[0][1]["exception.message"] == REDACTED
    assert "MRN-123456" not in repr(spans)
