"""Push a study through a running node and observe it arrive everywhere (used by up, demo and tests)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from eucaim_node.catalogue.documents import SERIES, STUDY, SeriesDocument, StudyDocument
from eucaim_node.deid import load_key, pseudonymise_uid
from eucaim_node.stack import Stack
from eucaim_node.stack.dicom_tools import storescu
from eucaim_node.store import collections

from .sample import SampleStudy, write_sample_study


@dataclass
class StudyOutcome:
    """What the node holds for one study, read from the research Orthanc and MongoDB."""

    study_key: str
    research_instances: int = 0
    catalogue_study: StudyDocument | None = None
    catalogue_series: list[SeriesDocument] = field(default_factory=list)
    collection: dict[str, Any] | None = None
    audit_actions: list[str] = field(default_factory=list)

    def complete(self, expected_instances: int) -> bool:
        """Catalogued with every instance, aggregated, and audited through CollectionUpdated."""
        return (
            self.research_instances == expected_instances
            and self.catalogue_study is not None
            and self.catalogue_study.instance_count == expected_instances
            and self.collection is not None
            and "CollectionUpdated" in self.audit_actions
        )


class NodeObserver:
    """Read-only view of a running local node."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._auth = {instance: stack.orthanc_auth(instance) for instance in ("clinical", "research")}
        self._mongo: MongoClient = stack.mongo_client(tz_aware=True)
        self.db = self._mongo[stack.settings.mongo_database]

    def close(self) -> None:
        self._mongo.close()

    def study_key(self, original_study_uid: str) -> str:
        return pseudonymise_uid(original_study_uid, load_key(self.stack.hmac_key_file()))

    def orthanc(self, instance: str, path: str) -> Any:
        response = httpx.get(f"{self.stack.orthanc_url(instance)}/{path}", auth=self._auth[instance], timeout=30)
        response.raise_for_status()
        return response.json() if "json" in response.headers.get("content-type", "") else response.content

    def research_study_id(self, study_key: str) -> str | None:
        """Orthanc ID of the de-identified study whose StudyInstanceUID is ``study_key``, or None."""
        found = httpx.post(f"{self.stack.orthanc_url('research')}/tools/lookup", content=study_key,
                           auth=self._auth["research"], timeout=30).json()
        return next((f["ID"] for f in found if f["Type"] == "Study"), None)

    def research_instance_count(self, study_key: str) -> int:
        study_id = self.research_study_id(study_key)
        return len(self.orthanc("research", f"studies/{study_id}/instances")) if study_id else 0

    def outcome(self, study_key: str) -> StudyOutcome:
        # The catalogue's documents, read as its typed model (eucaim_node.catalogue.documents): this view is
        # synchronous, the reader port (catalogue.reader) asynchronous.
        found = self.db[collections.CATALOGUE_STUDIES].find_one({STUDY.key: study_key})
        study = StudyDocument.from_document(found) if found else None
        return StudyOutcome(
            study_key=study_key,
            research_instances=self.research_instance_count(study_key),
            catalogue_study=study,
            catalogue_series=[SeriesDocument.from_document(d)
                              for d in self.db[collections.CATALOGUE_SERIES].find({SERIES.study_key: study_key})],
            collection=self.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": study.collection_id}) if study else None,
            audit_actions=sorted(r["action"] for r in self.audit_records_for(study_key, study)),
        )

    def audit_records_for(self, study_key: str, study: StudyDocument | None) -> list[dict[str, Any]]:
        entities = [study_key] + ([study.collection_id] if study else [])
        return list(self.db[collections.AUDIT_RECORDS].find({"entity": {"$in": entities}}))

    def wait_until_complete(self, study_key: str, expected_instances: int, timeout: float) -> StudyOutcome:
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.outcome(study_key)
            if outcome.complete(expected_instances) or time.monotonic() > deadline:
                return outcome
            time.sleep(0.5)


def push_sample(stack: Stack, dest: Path, **kwargs: Any) -> SampleStudy:
    """Generate the synthetic study under ``dest`` and send it to the clinical Orthanc with storescu, as the
    modality the allow-list admits from this machine (by default ``MODALITY`` from 127.0.0.1)."""
    sample = write_sample_study(dest, **kwargs)
    host, port, aet = stack.orthanc_dicom("clinical")
    storescu(dest, host, port, aet, calling_aet=stack.local_modality_aet())
    return sample


#: What the walkthrough shows of the sample's catalogue entry.
SUMMARY_FIELDS = (STUDY.subject_key, STUDY.collection_id, STUDY.modalities, STUDY.body_parts, STUDY.series_count,
                  STUDY.instance_count, STUDY.sex, STUDY.age_years, STUDY.study_date)


def describe(stack: Stack, outcome: StudyOutcome) -> str:
    """What a newcomer needs after ``make up``: where to look, and what arrived."""
    study = outcome.catalogue_study.to_document() if outcome.catalogue_study else {}
    aggregates = (outcome.collection or {}).get("aggregates", {})
    lines = [
        "",
        "eucaim-node is running.",
        # Orthanc Explorer stays off on both (it can delete and modify; decision 0098): the REST API's study list.
        f"  Clinical Orthanc (identifiable):   {stack.orthanc_url('clinical')}/studies?expand  (JSON; no web explorer)",
        f"  Research Orthanc (de-identified):  {stack.orthanc_url('research')}/studies?expand  (JSON; no web explorer)",
        *(f"      {instance}: user {stack.orthanc_auth(instance)[0]!r}, password in {stack.orthanc_password_file(instance)}"
          for instance in ("clinical", "research")),
        f"  Send DICOM to:                     {'{2}@{0}:{1}'.format(*stack.orthanc_dicom('clinical'))}  (e.g. storescu)",
        f"      from an allowed modality:      {', '.join(map(str, stack.settings.clinical_modalities))}",
        f"  MongoDB (catalogue, audit):        {stack.mongo_url()}  database {stack.settings.mongo_database!r}; TLS, "
        f"one SCRAM user per service",
        f"  Audit witness (cosigns heads):     {stack.witness_url()}/vkey  (its verifier key); "
        "check the ledger with `uv run eucaim-node audit verify`",
        f"  Kafka (SASL_SSL, SCRAM-SHA-512):   {stack.kafka_bootstrap()}  one user per service; the CLI's "
        f"(operator) and CA in {stack.node_env_file()}",
        f"  Logs:                              {stack.state_dir / 'logs'}",
        f"  Federated search (token in {stack.search_token_file()}):",
        f"    curl -H \"Authorization: Secret $(cut -d: -f2- {stack.search_token_file()})\" "
        f"-H 'Content-Type: application/json' -d '{{\"ast\": {{\"operand\": \"OR\", \"children\": []}}}}' "
        f"{stack.search_url()}",
        f"  Public catalogue (HealthDCAT-AP):  {stack.search_url().removesuffix('/federation/search')}/catalogue",
        f"  Processing jobs (Jobman API, token in {stack.jobs_token_file()}; docs/processing.md, `eucaim-node job list`):",
        f"    curl -s -H \"Authorization: Bearer $(cut -d: -f2- {stack.jobs_token_file()})\" {stack.jobs_url()}/images/",
        "",
        f"Sample study {outcome.study_key}",
        f"  research Orthanc:  {outcome.research_instances} de-identified instances",
        f"  catalogue entry:   {json.dumps({k: study.get(k) for k in SUMMARY_FIELDS})}",
        f"  collection:        {json.dumps(aggregates)}",
        f"  audit records:     {', '.join(outcome.audit_actions) or 'none yet'}",
    ]
    return "\n".join(lines)


def format_log_line(line: str) -> str:
    """One JSON log line as ``HH:MM:SS service LEVEL message key=value ...``."""
    try:
        record = json.loads(line)
    except ValueError:
        return line.rstrip()
    time_part = str(record.pop("time", ""))[11:19]
    service = record.pop("service", "?")
    level = record.pop("level", "")
    message = record.pop("message", "")
    record.pop("logger", None)
    extras = " ".join(f"{k}={v}" for k, v in record.items())
    return f"{time_part} {service:<14} {level:<7} {message} {extras}".rstrip()
