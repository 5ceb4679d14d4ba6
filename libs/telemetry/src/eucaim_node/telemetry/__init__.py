"""Logs, traces and metrics, set up the same way in every service (see docs/observability.md)."""

from .logs import TraceContextFilter, configure_logging
from .tracing import (
    NoOrphanClientSpans,
    RedactingExporter,
    TelemetryConfigurationError,
    configure_tracing,
    continuing,
    current_traceparent,
    shutdown_tracing,
    tracer,
)

__all__ = [
    "NoOrphanClientSpans",
    "RedactingExporter",
    "TelemetryConfigurationError",
    "TraceContextFilter",
    "configure_logging",
    "configure_tracing",
    "continuing",
    "current_traceparent",
    "shutdown_tracing",
    "tracer",
]
