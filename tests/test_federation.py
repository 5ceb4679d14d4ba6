"""EUCAIM Tier 1 and Tier 2 against the real stack: collections by rules, coded catalogue, federated search
(every construct, suppression, auth), HealthDCAT-AP publication with SHACL and a durable outbox, and
consent withdrawal end to end.

A generated multi-patient data set (12 studies of 11 synthetic patients) is pushed once for the module.
metadata and catalogue-sync are restarted with the example collections file (the search token is the one
the stack generated, as in `make up`), exact small-cell suppression at 3 and a push URL pointing at a real local HTTP server that fails and delays
requests; the module restores their environment afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rdflib import Graph, URIRef
from typer.testing import CliRunner

from eucaim_node.catalogue.config import bundled_config_path
from eucaim_node.catalogue.search import REQUEST_EXAMPLES_FILE
from eucaim_node.catalogue.shacl import validate
from eucaim_node.store.collections import CATALOGUE_DATASET_VERSIONS, CATALOGUE_REMOVED_STUDIES
from eucaim_node.cli.main import app as cli
from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.deid import load_key, pseudonymise_patient_id
from eucaim_node.events import AccessRecorded
from eucaim_node.store import collections
from eucaim_test_support.search import cond, explorer, services_restarted_with
from eucaim_test_support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STACK_TOKEN = "<the token the stack generated>"  # post()'s default: resolved from the stack's token file
MINE = ("lung-screening", "prostate-mri", "breast-screening")
UNKNOWN = "SNOMEDCT261665006"
HEALTH = "http://healthdataportal.eu/ns/health#"
CT, MR = "RID10321", "RID10312"
LUNG = ("CT", "CHEST", "LOW DOSE CHEST CT SCREENING")
PROSTATE = ("MR", "PROSTATE", "PROSTATE MRI")
BREAST = ("MG", "BREAST", "SCREENING MAMMOGRAPHY")
# (label, sex, age, (modality, body part, description), manufacturer, number of studies)
PATIENTS = [
    ("L1", "F", "055Y", LUNG, "SIEMENS", 2),
    ("L2", "F", "061Y", LUNG, "SIEMENS", 1),
    ("L3", "M", "067Y", LUNG, "GE MEDICAL SYSTEMS", 1),
    ("L4", "M", "072Y", LUNG, "Philips", 1),
    ("P1", "M", "060Y", PROSTATE, "Philips", 1),
    ("P2", "M", "066Y", PROSTATE, "Philips", 1),
    ("P3", "M", "071Y", PROSTATE, "SIEMENS", 1),
    ("B1", "F", "052Y", BREAST, "GE MEDICAL SYSTEMS", 1),
    ("B2", "F", "058Y", BREAST, "Hologic", 1),
    ("D1", "O", "045Y", ("MR", "KNEE", "KNEE MRI"), "Agfa", 1),  # no rule; KNEE and Agfa have no code
]


# -- a real remote catalogue that fails and delays ------------------------------------------------------------

@dataclass
class RemoteCatalogue:
    """PUT target: answers 503 to the first two requests, stalls the third past the client timeout, then 200."""

    mode: str = "flaky"  # flaky | down | up
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self):
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with remote.lock:
                    n = len(remote.requests)
                    mode = remote.mode
                if mode == "down" or (mode == "flaky" and n < 2):
                    status = 503
                elif mode == "flaky" and n == 2:
                    time.sleep(3)  # the node's client gives up after 1 s
                    status = 200
                else:
                    status = 204
                with remote.lock:
                    remote.requests.append({"path": self.path, "status": status, "headers": dict(self.headers),
                                            "body": body.decode()})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        return Handler

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] == 204]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- helpers ----------------------------------------------------------------------------------------------------

def mine(answer: dict) -> dict[str, tuple[int, int]]:
    return {c["id"]: (c["studies_count"], c["subjects_count"]) for c in answer["collections"] if c["id"] in MINE}


@dataclass
class Federation:
    stack: Any
    observer: Any
    kafka: Any
    remote: RemoteCatalogue
    env: dict[str, str]
    seed: str
    subjects: dict[str, str]
    study_keys: dict[str, list[str]]
    patients: dict[str, SamplePatient]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.health_port('catalogue_sync')}"

    def cli(self, *args: str, input: str | None = None, env: dict[str, str] | None = None):
        """Run the CLI as an operator would: in its own thread, so its asyncio.run() has no loop around it."""
        outcome = []
        thread = threading.Thread(target=lambda: outcome.append(CliRunner().invoke(
            cli, [*args, "--env-file", str(self.stack.node_env_file())], input=input, env=env or self.env)))
        thread.start()
        thread.join()
        return outcome[0]

    def search_cli(self, body: dict, tmp_path: Path) -> dict:
        query = tmp_path / f"q{time.monotonic_ns()}.json"
        query.write_text(json.dumps(body))
        result = self.cli("search", str(query), env={**self.env, "EUCAIM_SEARCH_MIN_COUNT": "1"})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def post(self, body: Any, *, token: str | None = STACK_TOKEN, content_type: str = "application/json",
             path: str = "/federation/search") -> httpx.Response:
        headers = {"content-type": content_type}
        token = self.stack.search_token() if token == STACK_TOKEN else token
        if token is not None:
            headers["authorization"] = f"Secret {token}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(self.base + path, content=data, headers=headers, timeout=30)

    def versions(self, collection_id: str) -> list[dict]:
        return list(self.observer.db[CATALOGUE_DATASET_VERSIONS].find({"collection_id": collection_id}).sort("version", 1))

    async def access_events(self) -> list[dict]:
        return [json.loads(v) for _, _, v in await self.kafka.read(AccessRecorded.TOPIC)]


async def idle(kafka, attempts: int = 30) -> None:
    """``wait_until_idle``, tolerating a fresh cluster whose group coordinator is not elected yet."""
    from aiokafka.errors import GroupCoordinatorNotAvailableError

    for _ in range(attempts - 1):
        try:
            return await kafka.wait_until_idle()
        except GroupCoordinatorNotAvailableError:
            await asyncio.sleep(1)
    await kafka.wait_until_idle()


@pytest.fixture(scope="module")
async def federation(stack, observer, kafka, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("federation")
    remote = RemoteCatalogue()
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), remote.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "EUCAIM_COLLECTIONS_FILE": str(bundled_config_path("collections.example.yaml")),
        "EUCAIM_SEARCH_PROTECTION": "suppress",
        "EUCAIM_SEARCH_MIN_COUNT": "3",
        "EUCAIM_CATALOGUE_COUNT_GRANULARITY": "1",
        "EUCAIM_CATALOGUE_PUSH_URL": f"http://127.0.0.1:{port}/datasets/{{collection_id}}",
        "EUCAIM_CATALOGUE_PUSH_TIMEOUT_SECONDS": "1",
        "EUCAIM_CATALOGUE_PUSH_BACKOFF_SECONDS": "0.2",
        "EUCAIM_CATALOGUE_PUSH_BACKOFF_MAX_SECONDS": "1",
    }
    await idle(kafka)  # nothing in flight is indexed under the new rules by accident
    try:
        with services_restarted_with(stack, env, "metadata", "catalogue_sync"):
            seed = f"fed-{os.urandom(3).hex()}"
            key = load_key(stack.hmac_key_file())
            prefix = stack.node_env()["EUCAIM_SITE_PREFIX"]
            subjects, study_keys, patients = {}, {}, {}
            for label, sex, age, (modality, body_part, description), manufacturer, studies in PATIENTS:
                patient = SamplePatient(name=f"FEDPATIENT{label}{seed[-4:].upper()}^ZOE", patient_id=f"FED-{seed}-{label}",
                                        birth_date="19600101", sex=sex, age=age, accession_number=f"ACCFED-{seed}-{label}")
                patients[label] = patient
                subjects[label] = pseudonymise_patient_id(patient.patient_id, key, prefix)
                study_keys[label] = []
                for n in range(studies):
                    sample = push_sample(stack, tmp / f"{label}-{n}", patient=patient, seed=f"{seed}-{label}-{n}", series=1,
                                         instances_per_series=2, modality=modality, body_part=body_part,
                                         manufacturer=manufacturer, study_description=description,
                                         study_date=f"2023{n + 1:02d}15")
                    study_keys[label].append(observer.study_key(sample.study_instance_uid))
            every = [k for keys in study_keys.values() for k in keys]
            wait_for(lambda: observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": {"$in": every}}) == len(every),
                     180, "the data set to be catalogued")
            await kafka.wait_until_idle()
            yield Federation(stack, observer, kafka, remote, env, seed, subjects, study_keys, patients)
    finally:
        server.shutdown()


# -- collections and coding -------------------------------------------------------------------------------------

async def test_rules_put_each_study_in_its_collection_with_cdm_coding(federation):
    db = federation.observer.db
    expected = {"L": "lung-screening", "P": "prostate-mri", "B": "breast-screening", "D": "default"}
    for label, keys in federation.study_keys.items():
        for key in keys:
            study = db[collections.CATALOGUE_STUDIES].find_one({"_id": key})
            assert study["collection_id"] == expected[label[0]], (label, study["collection_id"])
            assert study["subject_key"] == federation.subjects[label]
    l3 = db[collections.CATALOGUE_STUDIES].find_one({"_id": federation.study_keys["L3"][0]})
    assert (l3["modality_codes"], l3["body_part_codes"], l3["sex_code"]) == ([CT], ["SNOMEDCT43799004"], "SNOMEDCT248153007")
    assert (l3["manufacturer_codes"], l3["condition_code"], l3["age_years"]) == (["birnlex_12833"], "SNOMEDCT363358000", 67.0)
    d1 = db[collections.CATALOGUE_STUDIES].find_one({"_id": federation.study_keys["D1"][0]})
    # Values with no code are kept, coded as an explicit unknown.
    assert (d1["manufacturers"], d1["manufacturer_codes"], d1["sex_code"]) == (["AGFA"], [UNKNOWN], "SNOMEDCT74964007")
    assert (d1["modality_codes"], d1["body_parts"], d1["body_part_codes"]) == ([MR], ["KNEE"], [UNKNOWN])
    series = db[collections.CATALOGUE_SERIES].find_one({"study_key": federation.study_keys["P1"][0]})
    assert (series["modality_code"], series["body_part_code"], series["instance_count"]) == (MR, "SNOMEDCT41216001", 2)
    assert series["subject_key"] == federation.subjects["P1"] and series["slice_thickness_mm"] == 1.0
    subject = db["catalogue_subjects"].find_one({"_id": federation.subjects["L1"]})
    assert subject["study_count"] == 2 and subject["collection_ids"] == ["lung-screening"]
    # The calling AE title (storescu's) reaches the rules through StudyAnonymised, read from the clinical Orthanc.
    anonymised = [e for e in await federation.kafka.domain_events() if e["event_type"] == "StudyAnonymised"
                  and e["study_key"] == federation.study_keys["P1"][0]]
    assert anonymised and {e["calling_aet"] for e in anonymised} == {"MODALITY"}


async def test_collection_aggregates_are_current(federation):
    lung = federation.observer.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": "lung-screening"})["aggregates"]
    assert (lung["studies"], lung["subjects"], lung["series"], lung["instances"]) == (5, 4, 5, 10)
    assert lung["sex_counts"] == {"SNOMEDCT248152002": 2, "SNOMEDCT248153007": 2}
    assert lung["modalities"] == ["CT"] and lung["body_parts"] == ["CHEST"]
    assert lung["manufacturer_counts"] == {"birnlex_12833": 1, "birnlex_3065": 1, "birnlex_3066": 2}
    assert lung["age_range"] == [55.0, 72.0]


# -- Tier 2: every construct, exact counts (CLI, no suppression) --------------------------------------------------

QUERIES = [
    ("empty", {"ast": {"operand": "OR", "children": []}},
     {"lung-screening": (5, 4), "prostate-mri": (3, 3), "breast-screening": (2, 2)}),
    ("modality EQUALS", explorer(cond("RID10311", "EQUALS", CT)), {"lung-screening": (5, 4)}),
    ("modality NOT_EQUALS", explorer(cond("RID10311", "NOT_EQUALS", CT)),
     {"prostate-mri": (3, 3), "breast-screening": (2, 2)}),
    ("gender IN", explorer(cond("SNOMEDCT263495000", "IN", ["SNOMEDCT248153007"])),
     {"lung-screening": (2, 2), "prostate-mri": (3, 3)}),
    ("gender NOT_EQUALS", explorer(cond("SNOMEDCT263495000", "NOT_EQUALS", "SNOMEDCT248153007")),
     {"lung-screening": (3, 2), "breast-screening": (2, 2)}),
    ("manufacturer CONTAINS", explorer(cond("C25392", "CONTAINS", "siem")), {"lung-screening": (3, 2), "prostate-mri": (1, 1)}),
    ("manufacturer EQUALS alias", explorer(cond("C25392", "EQUALS", "C200140")),
     {"lung-screening": (3, 2), "prostate-mri": (1, 1)}),
    ("manufacturer unknown", explorer(cond("C25392", "EQUALS", UNKNOWN)), {"breast-screening": (1, 1)}),
    ("age BETWEEN", explorer(cond("SNOMEDCT423493009", "BETWEEN", {"min": 60, "max": 67})),
     {"lung-screening": (2, 2), "prostate-mri": (2, 2)}),
    ("age LOWER_THAN", explorer(cond("SNOMEDCT423493009", "LOWER_THAN", 56)),
     {"lung-screening": (2, 1), "breast-screening": (1, 1)}),
    ("age GREATER_THAN", explorer(cond("SNOMEDCT423493009", "GREATER_THAN", 70.0)),
     {"lung-screening": (1, 1), "prostate-mri": (1, 1)}),
    ("age EQUALS", explorer(cond("SNOMEDCT423493009", "EQUALS", 66)), {"prostate-mri": (1, 1)}),
    ("age NOT_EQUALS", explorer(cond("SNOMEDCT423493009", "NOT_EQUALS", 55)),
     {"lung-screening": (3, 3), "prostate-mri": (3, 3), "breast-screening": (2, 2)}),
    ("body part EQUALS", explorer(cond("SNOMEDCT123037004", "EQUALS", "SNOMEDCT41216001")), {"prostate-mri": (3, 3)}),
    ("diagnosis EQUALS", explorer(cond("SNOMEDCT439401001", "EQUALS", "SNOMEDCT363358000")), {"lung-screening": (5, 4)}),
    ("AND of two keys", explorer(cond("SNOMEDCT263495000", "EQUALS", "SNOMEDCT248153007"), cond("RID10311", "EQUALS", MR)),
     {"prostate-mri": (3, 3)}),
    ("nested OR of ANDs", {"ast": {"operand": "OR", "children": [
        {"operand": "AND", "children": [cond("RID10311", "EQUALS", MR), cond("SNOMEDCT423493009", "LOWER_THAN", 65)]},
        {"operand": "AND", "children": [cond("SNOMEDCT263495000", "EQUALS", "SNOMEDCT248152002"),
                                        cond("SNOMEDCT123037004", "EQUALS", "SNOMEDCT76752008")]}]}},
     {"prostate-mri": (1, 1), "breast-screening": (2, 2)}),
]


@pytest.mark.parametrize(("name", "body", "expected"), QUERIES, ids=[q[0] for q in QUERIES])
async def test_every_query_construct_gives_the_expected_counts(federation, tmp_path, name, body, expected):
    assert mine(federation.search_cli(body, tmp_path)) == expected


async def test_the_explorers_reference_request_is_answered(federation):
    examples = json.loads(REQUEST_EXAMPLES_FILE.read_text())["examples"]
    just_right = next(e for e in examples if e["name"] == "eucaim_api_just_right")
    response = federation.post(json.loads(just_right["raw"]))
    assert response.status_code == 200, response.text
    assert mine(response.json()) == {}  # men with breast images do not exist here


# -- Tier 2 over HTTP: auth, errors, suppression, audit ----------------------------------------------------------

async def test_search_needs_the_shared_secret(federation):
    body = {"ast": {"operand": "OR", "children": []}}
    assert federation.post(body, token=None).status_code == 401
    wrong = federation.post(body, token="not-the-token-0000000000")
    assert wrong.status_code == 401 and wrong.json()["status_code"] == 401
    assert federation.post(body).status_code == 200
    assert federation.post(body, path="/api/datasets/eucaimSearch").status_code == 200


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"{}", "text/plain", 415, "Content-Type: application/json"),
    ({"id": 1}, "application/json", 422, "missing member 'ast'"),
    ({"ast": cond("tumour-size", "EQUALS", "x")}, "application/json", 422, "unsupported search key 'tumour-size'"),
    ({"ast": {"operand": "NOR", "children": []}}, "application/json", 422, "unknown operand 'NOR'"),
    ({"ast": cond("SNOMEDCT423493009", "BETWEEN", "old")}, "application/json", 422, "BETWEEN needs {min, max}"),
])
async def test_bad_queries_get_a_clear_4xx(federation, body, content_type, status, message):
    response = federation.post(body, content_type=content_type)
    assert response.status_code == status and message in response.json()["error"], response.text


async def test_small_cells_are_suppressed_and_the_audit_never_holds_their_counts(federation):
    everything = federation.post({"ast": {"operand": "OR", "children": []}}).json()
    assert mine(everything) == {"lung-screening": (5, 4), "prostate-mri": (3, 3)}  # breast: 2 subjects < 3
    lung = next(c for c in everything["collections"] if c["id"] == "lung-screening")
    assert lung["gender"] == [] and lung["modality"] == ["CT"] and lung["body_parts"] == ["CHEST"]  # 2 F, 2 M: < 3 each
    assert lung["age_range"] == {"min": 60, "max": 70}  # 3rd youngest 61, 3rd oldest 61..67, widened; 55 and 72 hidden

    small = explorer(cond("SNOMEDCT423493009", "LOWER_THAN", 56))
    answer = federation.post(small).json()
    assert mine(answer) == {}
    await federation.kafka.wait_until_idle()
    events = [e for e in await federation.access_events() if e["actor"] == "search:local"]
    query_events = [e for e in events if "LOWER_THAN" in e["detail"].get("query", "")]
    assert query_events, "the query was not audited"
    detail = query_events[-1]["detail"]
    assert detail["suppressed_cells"] >= 2 and detail["studies_reported"] == answer["total"]["studies_count"]
    assert set(detail) == {"query_sha256", "query", "conditions", "keys", "unanswered_keys", "collections_reported", "studies_reported",
                           "subjects_reported", "suppressed_cells"}
    denied = [e for e in await federation.access_events() if e["outcome"] == "denied" and e["action"] == "federated-search"]
    assert denied and all(e["actor"].startswith("unauthenticated@") for e in denied)


# -- Tier 1: publication, SHACL, versions, outbox -----------------------------------------------------------------

async def test_the_published_catalogue_conforms_to_healthdcat_ap_non_public(federation):
    wait_for(lambda: all(federation.versions(c) for c in MINE), 60, "every collection to be published")
    response = httpx.get(federation.base + "/catalogue", headers={"accept": "text/turtle"}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=response.text, format="turtle")
    report = validate(graph)
    print(f"\nSHACL (HealthDCAT-AP R8 NON_PUBLIC + DCAT-AP 3.0.0): {len(graph)} triples, {report.summary()}")
    assert report.conforms and report.violations == ()
    jsonld = httpx.get(federation.base + "/catalogue?format=jsonld", timeout=30)
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    assert len(Graph().parse(data=jsonld.text, format="json-ld")) == len(graph)
    lung = URIRef("https://eucaim.example-hospital.eu/node/catalogue/datasets/lung-screening")
    assert int(graph.value(lung, URIRef(HEALTH + "numberOfRecords"))) == 5
    assert int(graph.value(lung, URIRef(HEALTH + "numberOfUniqueIndividuals"))) == 4
    assert graph.value(lung, URIRef(HEALTH + "hdab")) is not None


async def test_datasets_are_versioned_and_earlier_versions_stay_resolvable(federation):
    versions = federation.versions("lung-screening")
    latest = versions[-1]
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    assert all(v["shacl"]["conforms"] for v in versions)
    current = httpx.get(federation.base + "/catalogue/datasets/lung-screening", timeout=30)
    graph = Graph().parse(data=current.text, format="turtle")
    assert [str(v) for v in graph.objects(None, URIRef("http://www.w3.org/ns/dcat#version"))] == [latest["version_label"]]
    assert len(list(graph.objects(None, URIRef("http://purl.org/dc/terms/modified")))) == 1
    assert len(list(graph.objects(None, URIRef("http://www.w3.org/ns/adms#versionNotes")))) == 1
    harvester = {"authorization": f"Secret {federation.stack.search_token()}"}  # earlier versions: harvesters only
    first = httpx.get(federation.base + "/catalogue/datasets/lung-screening?version=1", headers=harvester, timeout=30)
    assert first.status_code == 200 and "1.0.0" in first.text
    assert httpx.get(federation.base + "/catalogue/datasets/lung-screening?version=9999", headers=harvester,
                     timeout=30).status_code == 404
    assert httpx.get(federation.base + "/catalogue/datasets/lung-screening?version=x", timeout=30).status_code == 400
    assert httpx.get(federation.base + "/catalogue?format=xml", timeout=30).status_code == 400
    await federation.kafka.wait_until_idle()
    reads = [e for e in await federation.access_events() if e["action"] == "catalogue-read"]
    assert any(e["target"] == "lung-screening" for e in reads) and any(e["target"] == "catalogue" for e in reads)


async def test_the_cli_prints_and_checks_the_catalogue(federation):
    result = federation.cli("catalogue", "dcat", "--format", "jsonld")
    assert result.exit_code == 0, result.output
    assert len(Graph().parse(data=result.stdout, format="json-ld")) > 100
    check = federation.cli("catalogue", "check")
    assert check.exit_code == 0 and "violations=0" in check.stdout, check.output


async def test_the_outbox_delivers_through_failures_and_delays(federation):
    remote = federation.remote

    def latest_delivered():
        return all(federation.versions(c)[-1]["delivery"]["status"] == "delivered" for c in MINE if federation.versions(c))

    wait_for(latest_delivered, 120, "the newest versions to reach the remote catalogue")
    statuses = [r["status"] for r in remote.requests]
    assert statuses[:2] == [503, 503] and 200 in statuses[2:3]  # refused twice, then one answered too late
    for collection in MINE:
        latest = federation.versions(collection)[-1]
        sent = [r for r in remote.delivered() if r["path"] == f"/datasets/{collection}"]
        assert sent and sent[-1]["headers"]["X-EUCAIM-Dataset-Version"] == latest["version_label"]
        assert sent[-1]["headers"]["Content-Type"].startswith("text/turtle")
        assert Graph().parse(data=sent[-1]["body"], format="turtle")
    # Every request was counted as an attempt of some version: a refused one may have been superseded by a newer
    # version before its retry (then no single version shows more than one attempt), so count them all.
    paths = {f"/datasets/{c}" for c in MINE}
    assert sum(v["delivery"]["attempts"] for c in MINE for v in federation.versions(c)) == \
        len([r for r in remote.requests if r["path"] in paths])


# -- consent withdrawal ----------------------------------------------------------------------------------------

async def test_withdrawal_end_to_end_survives_a_remote_outage_and_a_restart(federation, tmp_path):
    observer, stack = federation.observer, federation.stack
    l1_studies, l1_subject = federation.study_keys["L1"], federation.subjects["L1"]
    assert all(observer.research_instance_count(k) == 2 for k in l1_studies)
    before = federation.versions("lung-screening")[-1]["version"]
    federation.remote.mode = "down"

    result = federation.cli("withdraw", "--patient-id", federation.patients["L1"].patient_id, "--yes")
    assert result.exit_code == 0, result.output
    assert federation.patients["L1"].patient_id not in result.output and l1_subject in result.output

    wait_for(lambda: all(observer.research_instance_count(k) == 0 for k in l1_studies), 120, "research deletion")
    wait_for(lambda: observer.db[collections.CATALOGUE_STUDIES].count_documents({"subject_key": l1_subject}) == 0,
             60, "catalogue removal")
    assert observer.db[CATALOGUE_REMOVED_STUDIES].count_documents({"subject_key": l1_subject}) == 2
    wait_for(lambda: federation.versions("lung-screening")[-1]["version"] > before, 60, "republication")
    await federation.kafka.wait_until_idle()
    lung = observer.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": "lung-screening"})["aggregates"]
    assert (lung["studies"], lung["subjects"]) == (3, 3)
    assert mine(federation.search_cli({"ast": {"operand": "OR", "children": []}}, tmp_path))["lung-screening"] == (3, 3)
    newest = federation.versions("lung-screening")[-1]
    assert "number of studies" in newest["notes"] and newest["delivery"]["status"] == "pending"

    # Every step is on the audited topics, keyed by pseudonymous keys only.
    events = await federation.kafka.domain_events()
    withdrawal = [e for e in events if e["event_type"] == "WithdrawalRequested" and e["subject_key"] == l1_subject]
    assert len({e["event_id"] for e in withdrawal}) == 1
    for kind in ("StudyWithdrawn", "StudyRemoved"):
        assert sorted(e["study_key"] for e in events if e["event_type"] == kind
                      and e["causation_id"] == withdrawal[0]["event_id"]) == sorted(l1_studies), kind
    assert any(e["event_type"] == "CollectionPublished" and e["collection_id"] == "lung-screening"
               and e["version"] == newest["version"] for e in events)
    assert any(e["event_type"] == "AccessRecorded" and e["action"] == "withdrawal" and e["target"] == l1_subject
               for e in events)

    # The remote is down: the new version waits in the outbox, through a restart of catalogue-sync.
    wait_for(lambda: federation.versions("lung-screening")[-1]["delivery"]["attempts"] >= 1, 30, "a failed attempt")
    stack.restart("catalogue_sync")
    federation.remote.mode = "up"
    wait_for(lambda: federation.versions("lung-screening")[-1]["delivery"]["status"] == "delivered", 60, "delivery")
    assert federation.remote.delivered()[-1]["headers"]["X-EUCAIM-Dataset-Version"] == newest["version_label"]

    # Withdrawing again changes nothing and duplicates nothing.
    again = federation.cli("withdraw", "--patient-id", federation.patients["L1"].patient_id, "--yes")
    assert again.exit_code == 0
    await federation.kafka.wait_until_idle()
    after = await federation.kafka.domain_events()
    assert len({e["event_id"] for e in after if e["event_type"] == "StudyWithdrawn" and e["subject_key"] == l1_subject}) == 2
    assert federation.versions("lung-screening")[-1]["version"] == newest["version"]


async def test_a_withdrawal_before_the_images_prevents_their_release(federation, tmp_path):
    observer, stack = federation.observer, federation.stack
    patient = SamplePatient(name=f"FEDLATE{federation.seed[-4:].upper()}^ZOE", patient_id=f"FED-{federation.seed}-W1",
                            birth_date="19600101", sex="F", age="064Y", accession_number=f"ACCFED-{federation.seed}-W1")
    federation.patients["W1"] = patient  # scanned for in logs and events by the last test
    result = federation.cli("withdraw", "--yes", input=patient.patient_id + "\n")  # prompted, not echoed
    assert result.exit_code == 0, result.output
    await federation.kafka.wait_until_idle()
    sample = push_sample(stack, tmp_path, patient=patient, seed=f"{federation.seed}-W1", series=1, instances_per_series=2,
                         modality="CT", body_part="CHEST", study_description="LOW DOSE CHEST CT SCREENING")
    key = observer.study_key(sample.study_instance_uid)
    deadline = time.monotonic() + 120
    while True:
        events = await federation.kafka.domain_events()
        if any(e["event_type"] == "StudyWithheld" and e["study_key"] == key for e in events):
            break
        assert time.monotonic() < deadline, "the study was not withheld"
        await asyncio.sleep(0.5)
    await federation.kafka.wait_until_idle()
    assert observer.research_instance_count(key) == 0
    assert observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": key}) == 0
    assert not any(e["event_type"] == "StudyAnonymised" and e["study_key"] == key for e in events)


async def test_no_identifier_of_the_federation_patients_leaves_the_clinical_side(federation):
    identifying = [v for p in federation.patients.values() for v in (p.name, p.patient_id, p.accession_number)]
    identifying += [p.name.split("^")[0] for p in federation.patients.values()]
    events = json.dumps(await federation.kafka.domain_events())
    for value in identifying:
        assert value not in events
    for service in ("reception", "anonymisation", "metadata", "catalogue_sync", "audit"):
        text = federation.stack.log_path(service).read_text(errors="replace")
        for value in identifying:
            assert value not in text, f"{service} log names a patient"
