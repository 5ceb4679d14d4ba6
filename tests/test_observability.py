"""Traces, metrics and logs of the real node (session stack: Kafka, FerretDB, two Orthancs, five services).

The test profile's services export spans with OTLP/HTTP to ``127.0.0.1:<otlp_port>`` (standard
OTEL_* variables, see eucaim_node.stack); here an in-memory receiver listens there.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pydicom
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eucaim_node.cli.sample import SamplePatient, write_sample_study
from eucaim_node.events import DOMAIN_TOPICS, dead_letter_topic
from eucaim_node.stack import SERVICES
from eucaim_node.store import collections
from eucaim_test_support.otlp import OtlpReceiver, Span

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SERVICE_NAMES = {s: f"eucaim-node-{s.replace('_', '-')}" for s in SERVICES}
#: The services a study passes through (the materialiser and the job service act on datasets, not on each study).
STUDY_FLOW = ("reception", "anonymisation", "metadata", "catalogue_sync", "audit")
CONSUMES = {  # consumer group -> topics it must have handled for one study (no quarantine)
    "anonymisation": {"eucaim.study.received.v1"},
    "metadata": {"eucaim.study.anonymised.v1"},
    "catalogue_sync": {"eucaim.study.indexed.v1"},
    "audit": {"eucaim.study.received.v1", "eucaim.study.anonymised.v1", "eucaim.study.indexed.v1",
              "eucaim.collection.updated.v1"},
}


def patient(seed: str) -> SamplePatient:
    digits = str(abs(hash(seed)) % 10**6).zfill(6)
    return SamplePatient(name=f"TESTPATIENT{digits}^ALICE", patient_id=f"MRN-{digits}", birth_date="19580203",
                         accession_number=f"ACC-{digits}")


def send(stack, files) -> None:
    """Upload Part-10 files to the clinical Orthanc over REST (as a modality gateway would)."""
    for path in files:
        httpx.post(f"{stack.orthanc_url('clinical')}/instances", content=Path(path).read_bytes(),
                   auth=stack.orthanc_auth("clinical"), timeout=30).raise_for_status()


def identifying(sample) -> list[str]:
    return [*sample.patient.identifying_values(), *sample.original_uids]


@pytest.fixture(scope="module")
def otlp(stack):
    with OtlpReceiver(stack.settings.otlp_port) as receiver:
        yield receiver


def scrape(stack, service: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"http://{stack.settings.host}:{stack.settings.health_port(service)}/metrics", timeout=30).text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name: str, /, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _ancestry(span: Span, by_id: dict[str, Span]) -> list[Span]:
    chain = []
    while span.parent_span_id is not None:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def _wait_for_trace(otlp: OtlpReceiver, study_key: str, timeout: float = 90.0) -> list[Span]:
    """The trace whose root is reception's span for ``study_key``, once audit's spans for it arrived."""
    deadline = time.monotonic() + timeout
    while True:
        roots = [s for s in otlp.spans() if s.name == "receive study" and s.attributes.get("eucaim.study_key") == study_key]
        if roots:
            spans = otlp.trace(roots[0].trace_id)
            audited = {s.attributes.get("messaging.destination_publish.name") for s in spans
                       if s.service == SERVICE_NAMES["audit"] and s.kind == "CONSUMER"}
            if CONSUMES["audit"] <= audited and all(s.parent_span_id in {x.span_id for x in spans}
                                                    for s in spans if s.parent_span_id):
                return spans
        assert time.monotonic() < deadline, f"no complete trace for the study; {len(otlp.spans())} spans received"
        time.sleep(1)


async def test_one_study_is_one_trace_from_reception_to_audit(stack, observer, kafka, otlp, tmp_path, unique_seed):
    sample = write_sample_study(tmp_path, patient=patient(unique_seed), seed=unique_seed, series=1,
                                instances_per_series=3)
    send(stack, sample.files)
    key = observer.study_key(sample.study_instance_uid)
    assert observer.wait_until_complete(key, 3, timeout=120).complete(3)
    await kafka.wait_until_idle()
    spans = await asyncio.to_thread(_wait_for_trace, otlp, key)
    by_id = {s.span_id: s for s in spans}

    # One tree: a single root, reception's span for this study; every other span hangs below it.
    [root] = [s for s in spans if s.parent_span_id is None]
    assert (root.service, root.name, root.attributes["eucaim.study_key"]) == (SERVICE_NAMES["reception"], "receive study", key)
    assert {s.service for s in spans} == {SERVICE_NAMES[s] for s in STUDY_FLOW}

    # Each consumer continues the trace of the message it handled, keyed by the study key (or collection).
    consumers = [s for s in spans if s.kind == "CONSUMER" and s.name.endswith(" process")]
    handled = {(s.service, s.attributes["messaging.destination_publish.name"]) for s in consumers}
    required = {(SERVICE_NAMES[g], t) for g, topics in CONSUMES.items() for t in topics}
    assert required <= handled
    # Anything else in the trace is audit recording a further event of the flow (e.g. a catalogue publication).
    assert {service for service, _ in handled - required} <= {SERVICE_NAMES["audit"]}
    for span in consumers:
        if span.attributes["messaging.destination_publish.name"].startswith("eucaim.study."):
            assert span.attributes["messaging.kafka.message.key"] == key
    # Causality: metadata's work sits below anonymisation's, which sits below reception's.
    metadata = next(s for s in consumers if s.service == SERVICE_NAMES["metadata"])
    chain = [(s.service, s.kind) for s in _ancestry(metadata, by_id)]
    assert (SERVICE_NAMES["anonymisation"], "CONSUMER") in chain and chain[-1] == (SERVICE_NAMES["reception"], "INTERNAL")

    # Orthanc HTTP calls and MongoDB commands are spans of the unit of work that made them.
    def client_spans(service, system):
        return [s for s in spans if s.service == SERVICE_NAMES[service] and s.kind == "CLIENT"
                and (s.attributes.get("db.system") == "mongodb" if system == "mongodb"
                     else ("http.method" in s.attributes or "http.request.method" in s.attributes))]

    def url(span):
        return span.attributes.get("http.url") or span.attributes.get("url.full", "")

    fetched = [s for s in client_spans("anonymisation", "http") if url(s).endswith("/file")]
    stored = [s for s in client_spans("anonymisation", "http") if url(s).endswith("/instances")
              and (s.attributes.get("http.method") or s.attributes.get("http.request.method")) == "POST"]
    assert len(fetched) >= 3 and len(stored) >= 3
    assert all(url(s).startswith(stack.orthanc_url("clinical")) for s in fetched)
    assert all(url(s).startswith(stack.orthanc_url("research")) for s in stored)
    assert client_spans("reception", "http") and client_spans("metadata", "http")
    for service in ("reception", "metadata", "catalogue_sync", "audit"):
        assert client_spans(service, "mongodb"), f"no MongoDB span in {service}"
        assert all("db.statement" not in s.attributes or " " not in str(s.attributes["db.statement"])
                   for s in client_spans(service, "mongodb")), "MongoDB statements must not carry query values"

    # Logs about this study carry its trace id, in every service that handled it.
    for service, message in (("reception", "study received"), ("anonymisation", "study anonymised"),
                             ("metadata", "study indexed")):
        lines = [line for line in stack.log_path(service).read_text(errors="replace").splitlines()
                 if key in line and f'"message": "{message}"' in line]
        assert lines and all(f'"trace_id": "{root.trace_id}"' in line for line in lines), service
    # Audit records keep the trace context of the event they record.
    records = list(observer.db[collections.AUDIT_RECORDS].find({"entity": key}))
    assert records and all(r["traceparent"].split("-")[1] == root.trace_id for r in records)

    # Nothing identifying in any span received during the session (names, IDs, dates, original UIDs).
    exported = repr(otlp.spans())
    for text in identifying(sample):
        assert text not in exported


async def test_metrics_count_what_one_study_did(stack, observer, kafka, tmp_path, unique_seed):
    """Per service, the counters move by exactly what one study with one quarantined instance causes."""
    await kafka.wait_until_idle()
    before = {s: scrape(stack, s) for s in SERVICES}
    sample = write_sample_study(tmp_path, patient=patient(unique_seed), seed=unique_seed, series=1,
                                instances_per_series=4)
    flagged = pydicom.dcmread(sample.files[0])
    flagged.BurnedInAnnotation = "YES"
    flagged.save_as(sample.files[0])
    send(stack, sample.files)
    key = observer.study_key(sample.study_instance_uid)
    assert observer.wait_until_complete(key, 3, timeout=120).complete(3)
    await kafka.wait_until_idle()
    after = {s: scrape(stack, s) for s in SERVICES}

    def delta(process, name, /, **labels):
        return value(after[process], name, **labels) - value(before[process], name, **labels)

    assert delta("reception", "eucaim_events_published_total", service="reception", event_type="StudyReceived") == 1
    anon = dict(service="anonymisation")
    assert delta("anonymisation", "eucaim_events_handled_total", topic="eucaim.study.received.v1", **anon) == 1
    assert delta("anonymisation", "eucaim_instances_deidentified_total", **anon) == 3
    assert delta("anonymisation", "eucaim_instances_quarantined_total", reason="burned-in-annotation", **anon) == 1
    assert delta("anonymisation", "eucaim_instances_phi_guard_blocked_total", **anon) == 0
    for event_type in ("StudyAnonymised", "StudyQuarantined"):
        assert delta("anonymisation", "eucaim_events_published_total", event_type=event_type, **anon) == 1
    assert delta("metadata", "eucaim_events_handled_total", service="metadata", topic="eucaim.study.anonymised.v1") == 1
    assert delta("metadata", "eucaim_events_published_total", service="metadata", event_type="StudyIndexed") == 1
    assert delta("catalogue_sync", "eucaim_events_handled_total", service="catalogue-sync",
                 topic="eucaim.study.indexed.v1") == 1
    assert delta("catalogue_sync", "eucaim_events_published_total", service="catalogue-sync",
                 event_type="CollectionUpdated") == 1
    for topic in ("eucaim.study.received.v1", "eucaim.study.anonymised.v1", "eucaim.study.quarantined.v1",
                  "eucaim.study.indexed.v1", "eucaim.collection.updated.v1"):
        assert delta("audit", "eucaim_events_handled_total", service="audit", topic=topic) == 1, topic
    # One histogram observation per successful attempt, and no failure anywhere.
    for service, _label in (("anonymisation", "anonymisation"), ("metadata", "metadata"),
                           ("catalogue_sync", "catalogue-sync"), ("audit", "audit")):
        handled = sum(v for (n, l), v in after[service].items() if n == "eucaim_events_handled_total") - sum(
            v for (n, l), v in before[service].items() if n == "eucaim_events_handled_total")
        observed = sum(v for (n, l), v in after[service].items() if n == "eucaim_event_handling_seconds_count"
                       and ("outcome", "success") in l) - sum(
            v for (n, l), v in before[service].items() if n == "eucaim_event_handling_seconds_count"
            and ("outcome", "success") in l)
        assert handled == observed > 0, service
        failed = [(n, dict(l)) for (n, l), v in after[service].items()
                  if n == "eucaim_events_failed_total" and v != value(before[service], n, **dict(l))]
        assert failed == [], service

    # Consumer lag is measured from Kafka for every topic each group consumes, and is zero once idle.
    expected_topics = {
        "anonymisation": {"eucaim.study.received.v1"}, "metadata": {"eucaim.study.anonymised.v1"},
        "catalogue_sync": {"eucaim.study.indexed.v1"},
        "audit": {*DOMAIN_TOPICS, *(dead_letter_topic(g) for g in ("anonymisation", "metadata", "catalogue-sync"))},
    }
    deadline = time.monotonic() + 60
    while True:
        lags = {s: {dict(l)["topic"]: v for (n, l), v in scrape(stack, s).items() if n == "eucaim_consumer_lag"}
                for s in expected_topics}
        if all(set(lags[s]) >= topics and not any(lags[s].values()) for s, topics in expected_topics.items()):
            break
        assert time.monotonic() < deadline, f"consumer lag not measured as zero: {lags}"
        await asyncio.sleep(1)
    # Label values are names and codes only: nothing about the study or the patient.
    for service in SERVICES:
        text = httpx.get(f"http://{stack.settings.host}:{stack.settings.health_port(service)}/metrics", timeout=30).text
        for secret in [key, *identifying(sample)]:
            assert secret not in text, service
