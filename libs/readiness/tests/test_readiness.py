"""Readiness checks over a fake node, and the three report formats."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.config import bundled_config_path, load_config
from eucaim_node.readiness import render
from eucaim_node.readiness.core import CHECKS, Status, assess
from eucaim_node.readiness.ports import (
    DeidSettings, DeliveryState, HttpAnswer, LedgerVerification, ProbeError, Transport,
)

CONFIG = load_config(bundled_config_path("collections.example.yaml"))
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TOKEN = "t" * 32
GOOD_QUALITY = {"series_checked": 4, "studies_checked": 2, "flagged": {"missing_slices": 0},
                "tag_present": {"PatientID": 4, "Modality": 4, "BodyPartExamined": 4, "Manufacturer": 4,
                                "AcquisitionDate": 4}}


def turtle(collection_ids=("lung-screening",)) -> str:
    graph = dcat.new_graph()
    facts = dcat.CollectionFacts(studies=None, subjects=None)
    datasets = [dcat.add_dataset(graph, CONFIG, CONFIG.resolved(c), facts, dcat.VersionInfo(1, NOW, NOW, "n"))
                for c in collection_ids]
    dcat.add_catalog(graph, CONFIG, datasets, NOW)
    return dcat.serialise(graph, "ttl")


@dataclasses.dataclass
class FakeNode:
    """A healthy node; tests break one thing at a time."""

    store_down: bool = False
    catalogue_text: str = dataclasses.field(default_factory=turtle)
    token: str | None = TOKEN
    min_count: int = 10
    quality: dict = dataclasses.field(default_factory=lambda: {"lung-screening": GOOD_QUALITY})
    ledger_ok: bool = True
    witnessed: int | None = 40
    guard: bool = True
    push: str | None = "catalogue.eucaim.example"
    delivery: str = "delivered"
    verify: object = None

    def node_name(self):
        return "fake-node"

    def _store(self):
        if self.store_down:
            raise ProbeError("MongoDB at 127.0.0.1:1: connection refused")

    def store_ping(self):
        self._store()
        return "FerretDB 1.24 over TLS"

    def catalogue(self, fmt="ttl"):
        if self.store_down:
            return HttpAnswer(503, {"error": "the catalogue is unavailable"})
        return HttpAnswer(200, self.catalogue_text)

    def dataset(self, collection_id):
        return HttpAnswer(200 if collection_id == "lung-screening" else 404, "")

    def collections_config(self):
        return CONFIG

    def push_configured(self):
        return self.push

    def deliveries(self):
        self._store()
        return [DeliveryState("lung-screening", 3, self.delivery, 1, None if self.delivery == "delivered" else "HTTP 503")]

    def search_token(self):
        return self.token

    limited: bool = False
    refuse: str | None = None  # a search body holding this text is refused (422)

    def search(self, body, token):
        if self.limited:
            return HttpAnswer(429, {"error": "too many failed logins"}, retry_after="120")
        if token != TOKEN:
            return HttpAnswer(401, {"error": "missing or wrong secret"})
        if self.store_down:
            return HttpAnswer(503, {"error": "catalogue unavailable"})
        if self.refuse and self.refuse in json.dumps(body):
            return HttpAnswer(422, {"error": "unsupported search key"})
        return HttpAnswer(200, {"collections": []})

    def request_examples(self):
        return [{"name": "empty", "body": {"ast": {"operand": "OR", "children": []}}, "eucaim": True},
                {"name": "bbmri", "body": {"ast": {"operand": "OR", "children": [{"key": "x"}]}}, "eucaim": False}]

    def search_protection(self):
        return "perturb", self.min_count

    def collection_quality(self):
        self._store()
        return self.quality

    def datasets_verify(self):
        return self.verify

    def deid_settings(self):
        return DeidSettings("eucaim", ("clean-descriptors",), self.guard)

    def quarantine(self):
        self._store()
        return 0, 0

    def transport(self):
        return Transport("SASL_SSL", True, True, "http://127.0.0.1:8600/federation/search")

    def ledger(self):
        self._store()
        return LedgerVerification(self.ledger_ok, 40, 3, self.witnessed,
                                  None if self.ledger_ok and self.witnessed else "leaf 7 rewritten")


def statuses(node) -> dict[str, Status]:
    return {c.id: c.status for c in assess(node, NOW).checks}


def test_a_healthy_node_passes_except_what_it_cannot_have():
    report = assess(FakeNode(), NOW)
    s = {c.id: c.status for c in report.checks}
    # Tier 3 is "not available" here (a warning), and the example file is an example (placeholders).
    assert s.pop("datasets-verify") is Status.WARN and s.pop("catalogue-mandatory") is Status.WARN
    assert set(s.values()) == {Status.PASS}, s
    assert report.ready and report.exit_code == 0 and len(report.checks) == len(CHECKS)


def test_a_missing_search_token_fails_the_search_checks():
    s = statuses(FakeNode(token=None))
    assert s["search-auth"] is Status.FAIL and s["search-examples"] is Status.FAIL
    report = assess(FakeNode(token=None), NOW)
    (auth,) = [c for c in report.checks if c.id == "search-auth"]
    assert "token missing" in auth.evidence and "EUCAIM_SEARCH_TOKEN_FILE" in auth.action and report.exit_code == 1


def test_a_search_open_to_anyone_fails():
    node = FakeNode()
    node.search = lambda body, token: HttpAnswer(200, {"collections": []})
    (auth,) = [c for c in assess(node, NOW).checks if c.id == "search-auth"]
    assert auth.status is Status.FAIL and "without a token answered HTTP 200" in auth.evidence


def test_a_store_down_fails_the_store_and_what_needs_it_each_saying_why():
    report = assess(FakeNode(store_down=True), NOW)
    failed = {c.id: c for c in report.checks if c.status is Status.FAIL}
    assert {"store", "catalogue-valid", "ledger", "data-quality", "minimum-tags", "quarantine"} <= set(failed)
    assert "connection refused" in failed["store"].evidence
    assert "store is unreachable" in failed["catalogue-valid"].evidence and failed["ledger"].action
    assert statuses(FakeNode(store_down=True))["small-cells"] is Status.PASS  # settings need no store


def test_a_probe_that_raises_fails_only_its_check_with_the_error():
    node = FakeNode()

    def broken():
        raise ProbeError("witness at http://127.0.0.1:1 not answering")

    node.ledger = broken
    report = assess(node, NOW)
    (ledger,) = [c for c in report.checks if c.id == "ledger"]
    assert ledger.status is Status.FAIL and "could not be checked: witness" in ledger.evidence
    assert sum(c.status is Status.FAIL for c in report.checks) == 1


def test_an_invalid_catalogue_fails_with_the_violations():
    from rdflib import Graph, URIRef

    graph = Graph().parse(data=turtle(), format="turtle")
    graph.remove((None, URIRef("http://healthdataportal.eu/ns/health#hdab"), None))
    report = assess(FakeNode(catalogue_text=graph.serialize(format="turtle")), NOW)
    (check,) = [c for c in report.checks if c.id == "catalogue-valid"]
    assert check.status is Status.FAIL and "SHACL violation" in check.evidence and "hdab" in check.evidence


def test_an_empty_catalogue_fails():
    s = statuses(FakeNode(catalogue_text=turtle(())))
    assert s["catalogue-valid"] is Status.FAIL


@pytest.mark.parametrize(("node", "check", "status"), [
    (FakeNode(min_count=1), "small-cells", Status.FAIL),
    (FakeNode(min_count=5), "small-cells", Status.WARN),
    (FakeNode(guard=False), "deid-guard", Status.FAIL),
    (FakeNode(ledger_ok=False), "ledger", Status.FAIL),
    (FakeNode(witnessed=None), "ledger", Status.WARN),
    (FakeNode(push=None), "push", Status.WARN),
    (FakeNode(limited=True), "search-auth", Status.WARN),
    (FakeNode(limited=True), "search-examples", Status.WARN),
    (FakeNode(refuse='"OR", "children": []'), "search-examples", Status.FAIL),
    (FakeNode(refuse='"key": "x"'), "search-examples", Status.WARN),
    (FakeNode(delivery="pending"), "push", Status.FAIL),
    (FakeNode(quality={"c": {**GOOD_QUALITY, "flagged": {"mixed_orientation": 1}}}), "data-quality", Status.WARN),
    (FakeNode(quality={"c": {**GOOD_QUALITY, "tag_present": {**GOOD_QUALITY["tag_present"], "Manufacturer": 3}}}),
     "minimum-tags", Status.WARN),
    (FakeNode(quality={}), "data-quality", Status.WARN),
])
def test_each_broken_thing_gives_its_own_status(node, check, status):
    assert statuses(node)[check] is status


def test_tier3_uses_the_verification_when_the_node_has_one():
    from eucaim_node.readiness.ports import DatasetsVerification

    assert statuses(FakeNode(verify=DatasetsVerification(True, "2 of 2 verify", datasets=2)))["datasets-verify"] is Status.PASS
    assert statuses(FakeNode(verify=DatasetsVerification(True, "0 of 0 verify")))["datasets-verify"] is Status.WARN
    assert statuses(FakeNode(verify=DatasetsVerification(False, "1 of 2", ("d1: hash")))) ["datasets-verify"] is Status.FAIL


def test_text_json_and_html_say_the_same():
    report = assess(FakeNode(token=None, min_count=5), NOW)
    text = render.text(report)
    assert "[FAIL] The federated search is on and authenticated" in text and "NOT READY" in text
    data = json.loads(render.as_json(report))
    assert data["ready"] is False and data["summary"]["fail"] == report.count(Status.FAIL)
    page = render.html(report)
    assert 'data-check="search-auth" data-status="fail"' in page and "NOT READY" in page
    assert "<script" not in page and "http://" not in page.replace("http://127.0.0.1:8600", "")
    assert "src=" not in page and "<link" not in page


def test_html_escapes_what_the_node_says():
    node = FakeNode()
    node.search_protection = lambda: ("<script>alert(1)</script>", 10)
    page = render.html(assess(node, NOW))
    assert "<script>alert" not in page and "&lt;script&gt;" in page
