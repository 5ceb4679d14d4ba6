"""Prometheus metrics of a node service, served on ``GET /metrics`` of its health port.

Every label value is a service name, a topic, a consumer group, an event type, a reason code or a
failure kind: a small, fixed set, never a study key, an Orthanc ID or anything about a patient.
Counters count what this process did since it started (Prometheus' ``rate``/``increase`` handle
restarts). Instance counters are derived from the events a service publishes, so a study
processed twice (a redelivery) is counted twice; the catalogue, not these counters, is the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, disable_created_metrics

disable_created_metrics()  # no `<counter>_created` series: they double the exposition for no use here
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

EVENTS_HANDLED = Counter(
    "eucaim_events_handled", "Events whose handler succeeded (offset committed).",
    ["service", "topic"], registry=REGISTRY)
EVENTS_FAILED = Counter(
    "eucaim_events_failed",
    "Failed handler attempts; kind=transient (a dependency was down: retried without bound) or error "
    "(retried up to the attempt limit, then dead-lettered).",
    ["service", "topic", "kind"], registry=REGISTRY)
EVENTS_DEAD_LETTERED = Counter(
    "eucaim_events_dead_lettered", "Messages given up on and published to the consumer group's dead-letter topic.",
    ["service", "topic"], registry=REGISTRY)
HANDLING_SECONDS = Histogram(
    "eucaim_event_handling_seconds", "Duration of one handler attempt, by outcome (success or failure).",
    ["service", "topic", "outcome"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
EVENTS_PUBLISHED = Counter(
    "eucaim_events_published", "Events published (acknowledged by every in-sync replica).",
    ["service", "event_type"], registry=REGISTRY)
CONSUMER_LAG = Gauge(
    "eucaim_consumer_lag",
    "Messages on the topic not yet committed by the consumer group (end offset minus committed offset, "
    "summed over partitions), measured when /metrics is read.",
    ["service", "group", "topic"], registry=REGISTRY)
CONSUMER_LAG_ERRORS = Counter(
    "eucaim_consumer_lag_errors", "Lag measurements that failed (Kafka unreachable or slow); the gauge keeps its last value.",
    ["service"], registry=REGISTRY)
INSTANCES_DEIDENTIFIED = Counter(
    "eucaim_instances_deidentified", "De-identified instances released to the research Orthanc (from StudyAnonymised).",
    ["service"], registry=REGISTRY)
INSTANCES_QUARANTINED = Counter(
    "eucaim_instances_quarantined",
    "Instances held back, by reason code (from StudyQuarantined; instances beyond the event's list count as 'unlisted').",
    ["service", "reason"], registry=REGISTRY)
INSTANCES_PHI_GUARD_BLOCKED = Counter(
    "eucaim_instances_phi_guard_blocked",
    "Instances the PHI guard blocked: an identifying input value was still present after de-identification.",
    ["service"], registry=REGISTRY)

_REASON = re.compile(r"^[a-z][a-z0-9-]{0,47}$")
PHI_GUARD_REASON = "phi-guard"


def reason_label(reason: str) -> str:
    """A quarantine reason as a label value: a known-shaped code, or ``other`` (bounded cardinality)."""
    return reason if _REASON.match(reason) else "other"


def count_quarantined(service: str, reasons: Iterable[str], total: int) -> None:
    """Count ``total`` quarantined instances: one per listed reason, the rest as ``unlisted``."""
    listed = 0
    for reason in reasons:
        listed += 1
        INSTANCES_QUARANTINED.labels(service, reason_label(reason)).inc()
        if reason == PHI_GUARD_REASON:
            INSTANCES_PHI_GUARD_BLOCKED.labels(service).inc()
    if total > listed:
        INSTANCES_QUARANTINED.labels(service, "unlisted").inc(total - listed)

AUDIT_WITNESS_PENDING_LEAVES = Gauge(
    "eucaim_audit_witness_pending_leaves",
    "Leaves signed into a tree head but not yet covered by a head the witness cosigned (latest head size minus "
    "the witnessed size); grows while the witness is down or refuses.",
    ["service"], registry=REGISTRY)
AUDIT_WITNESS_FAILURES = Counter(
    "eucaim_audit_witness_failures", "Submissions of a tree head to the witness that failed, by kind "
    "(unavailable: the witness could not be reached; refused: it answered 4xx, e.g. a fork or a truncated ledger; "
    "rolled_back: it reported a size below the one it cosigned, so the node refused to re-anchor).",
    ["service", "kind"], registry=REGISTRY)
AUDIT_TREE_NODE_MISMATCHES = Counter(
    "eucaim_audit_tree_node_mismatches", "Times the stored subtree hashes of the audit ledger disagreed with a signed "
    "tree head (index: the hashes computed for a new head do not give its signed root, so none were stored; proof: "
    "a proof from stored hashes did not verify and was rebuilt from the leaves).",
    ["service", "kind"], registry=REGISTRY)
AUDIT_TREE_NODES_REPAIRED = Counter(
    "eucaim_audit_tree_nodes_repaired", "Stored subtree hashes of the audit ledger replaced by the hash recomputed "
    "from the leaves and checked against a signed tree head.", ["service"], registry=REGISTRY)

def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
