"""Traces: one trace per study, from reception to audit, exported with OTLP when configured.

Configuration is the standard OpenTelemetry environment, nothing of our own:

* ``OTEL_SDK_DISABLED=true`` turns tracing off (spans become no-ops, logs carry no trace ids).
* ``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` or ``none`` (comma-separated). Unset, spans are
  exported with OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
  set and kept in-process otherwise (trace ids still correlate the services' log lines).
* ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout, compression, certificate) as the OTLP/HTTP
  exporter reads them; only ``http/protobuf`` is supported as protocol (collector port 4318).
* ``OTEL_SERVICE_NAME`` (default ``eucaim-node-<service>``), ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_BSP_*`` (batching).

What a span may carry: pseudonymous keys, Orthanc IDs, topic names, counts. Kafka spans come from
FastStream's telemetry middleware (the message key is the pseudonymous study key); Orthanc calls
are spans of the ``requests`` instrumentation (URLs hold Orthanc IDs only); MongoDB commands are spans
of the ``pymongo`` instrumentation without statements. Exception messages are never exported
(they may quote input values): exported spans keep the exception type only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, _get_from_env_or_default
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

log = logging.getLogger("eucaim_node.telemetry")

_PROVIDER: TracerProvider | None = None
_PROPAGATOR = TraceContextTextMapPropagator()
REDACTED = "[redacted: exception messages may quote input values]"


class TelemetryConfigurationError(ValueError):
    """An OTEL_* variable has a value this node cannot honour."""


class NoOrphanClientSpans(Sampler):
    """Drop client spans that belong to no unit of work; decide everything else with ``delegate``.

    Readiness probes ping MongoDB and Orthanc, reception polls Orthanc's change feed every second:
    traced on their own, each call would be a one-span trace, thousands per hour. A dependency call
    is traced when it happens inside a consumed event or a received study (it has a parent).
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: Any = None) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self._delegate.get_description()}}}"


KAFKA_KEY = "messaging.kafka.message.key"


class KafkaKeyAsText(SpanProcessor):
    """Kafka keys are bytes (FastStream records them as such); the node's keys are UIDs: show them as text."""

    def on_start(self, span, parent_context=None) -> None:
        key = (span.attributes or {}).get(KAFKA_KEY)
        if isinstance(key, bytes):
            span.set_attribute(KAFKA_KEY, key.decode("utf-8", errors="replace"))


def _redact(span: ReadableSpan) -> ReadableSpan:
    """The span without exception messages (events and status description); everything else unchanged."""
    events = span.events
    status = span.status
    if not any(e.name == "exception" for e in events) and not status.description:
        return span
    new_events = tuple(
        Event("exception", {k: (REDACTED if k == "exception.message" else v) for k, v in (e.attributes or {}).items()
                            if k != "exception.stacktrace"}, e.timestamp)
        if e.name == "exception" else e
        for e in events
    )
    if status.description:
        exc_types = [e.attributes.get("exception.type") for e in new_events if e.name == "exception" and e.attributes]
        status = Status(StatusCode.ERROR, str(exc_types[-1]) if exc_types else "error")
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=span.attributes, events=new_events, links=span.links, kind=span.kind, status=status,
        start_time=span.start_time, end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter(SpanExporter):
    """Wraps an exporter: spans leave the process without exception messages or stack traces."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_redact(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def exporters_from_env() -> list[SpanExporter]:
    """The span exporters the OTEL_* environment asks for (see the module docstring)."""
    names = [n.strip().lower() for n in _env("OTEL_TRACES_EXPORTER").split(",") if n.strip()]
    if not names:
        endpoint = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_ENDPOINT")
        names = ["otlp"] if endpoint else []
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "none":
            continue
        if name == "otlp":
            protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
            if protocol != "http/protobuf":
                raise TelemetryConfigurationError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf (OTLP/HTTP, port 4318)")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + os.linesep))
        else:
            raise TelemetryConfigurationError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console or none)")
    return exporters


def configure_tracing(service: str, *, exporters: Sequence[SpanExporter] | None = None,
                      instrument: bool = True) -> TracerProvider | None:
    """Install the process's tracer provider and instrument requests (Orthanc) and pymongo.

    ``exporters`` replaces what the environment asks for (tests pass an in-memory exporter).
    Returns None when ``OTEL_SDK_DISABLED`` is true. Call once per process, before the app starts.
    """
    global _PROVIDER
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return None
    chosen = list(exporters) if exporters is not None else exporters_from_env()
    attributes: dict[str, Any] = {"service.namespace": "eucaim-node"}
    if not _env("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = f"eucaim-node-{service}"
    provider = TracerProvider(resource=Resource.create(attributes),
                              sampler=NoOrphanClientSpans(_get_from_env_or_default()))
    provider.add_span_processor(KafkaKeyAsText())
    for exporter in chosen:
        provider.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter)))
    if _PROVIDER is None:
        trace.set_tracer_provider(provider)
        _PROVIDER = provider
    else:  # a second call (tests): the global provider can be set once; add the new processors to it
        for exporter in chosen:
            _PROVIDER.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter)))
        provider = _PROVIDER
    if instrument:
        _instrument()
    log.info("tracing configured", extra={"exporters": [type(e).__name__ for e in chosen],
                                          "sampler": provider.sampler.get_description()})
    return provider


def _instrument() -> None:
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    if not RequestsInstrumentor().is_instrumented_by_opentelemetry:
        RequestsInstrumentor().instrument()
    if not PymongoInstrumentor().is_instrumented_by_opentelemetry:
        # capture_statement stays False: a statement would show query values.
        PymongoInstrumentor().instrument(capture_statement=False)


def shutdown_tracing() -> None:
    """Flush and stop the exporters (on service shutdown)."""
    if _PROVIDER is not None:
        _PROVIDER.force_flush(timeout_millis=3000)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside a recorded span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continuing(traceparent: str | None) -> Iterator[None]:
    """Run the block inside the span ``traceparent`` names (from :func:`current_traceparent`, possibly in another
    process): the block's spans are its children, in the same trace. None: the block runs as it is."""
    if not traceparent:
        yield
        return
    token = otel_context.attach(_PROPAGATOR.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


def tracer(name: str = "eucaim_node") -> trace.Tracer:
    return trace.get_tracer(name)
