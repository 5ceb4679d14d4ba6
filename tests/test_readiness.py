"""`eucaim-node readiness` against the real stack: a healthy node passes; a node with its search token missing, its
store down or its catalogue invalid gets those specific failures; the HTML report, opened in headless Chromium,
shows the verdict and every check. Each breakage is undone in a ``finally`` so the session's stack stays usable."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from rdflib import Graph, URIRef
from typer.testing import CliRunner

from eucaim_node.cli.main import app as cli
from eucaim_node.cli.readiness import LocalNodeProbe, report_for
from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.readiness.core import CHECKS, Status
from eucaim_node.stack import PORT_FIELDS
from eucaim_node.stack.browser import dump_dom, screenshot
from eucaim_node.store import collections
from eucaim_test_support.waiting import wait_for

HDAB = URIRef("http://healthdataportal.eu/ns/health#hdab")
ALWAYS_PASS = ("store", "catalogue-valid", "harvest", "search-auth", "small-cells", "deid-profile", "deid-guard",
               "transport", "ledger")
# The local stack has no remote catalogue, and the bundled collections file is a placeholder.
WARN_BY_DESIGN = ("push", "catalogue-mandatory")

@pytest.fixture(scope="module")
def published(stack, observer, tmp_path_factory):
    """At least one study catalogued and its collection published (Tier 1 needs a dataset); its collection id."""
    seed = f"ready-{time.monotonic_ns() % 10**8}"
    patient = SamplePatient(name=f"READYPATIENT{seed[-4:]}^LEA", patient_id=f"RDY-{seed}", accession_number=f"R{seed[-10:]}")
    sample = push_sample(stack, tmp_path_factory.mktemp("ready"), patient=patient, seed=seed, series=1,
                         instances_per_series=3)
    key = observer.study_key(sample.study_instance_uid)
    study = wait_for(lambda: observer.db[collections.CATALOGUE_STUDIES].find_one({"_id": key}), 120, "the study")
    versions = observer.db[collections.CATALOGUE_DATASET_VERSIONS]
    wait_for(lambda: versions.find_one({"collection_id": study["collection_id"]}), 120, "its collection to be published")
    # A fresh node's witness has cosigned nothing yet (a warning): the healthy node is one whose head it cosigned.
    wait_for(lambda: LocalNodeProbe(stack).ledger().witnessed_size, 120, "the witness to cosign a head")
    return study["collection_id"]


def statuses(report) -> dict[str, Status]:
    return {c.id: c.status for c in report.checks}


def evidence(report, check_id: str) -> str:
    return next(c.evidence for c in report.checks if c.id == check_id)


# Each test speaks from its own loopback address: the node limits failed logins per address (decision 0072), and
# the readiness check spends one (it proves that a request without a token is refused).
def test_a_healthy_node_passes(stack, published):
    report = report_for(stack, source_address="127.0.0.2")
    s = statuses(report)
    assert len(s) == len(CHECKS)
    assert {c: s[c] for c in ALWAYS_PASS} == dict.fromkeys(ALWAYS_PASS, Status.PASS), \
        [f"{c.id}: {c.evidence}" for c in report.checks if c.status is not Status.PASS]
    assert {c: s[c] for c in WARN_BY_DESIGN} == dict.fromkeys(WARN_BY_DESIGN, Status.WARN)
    # Every EUCAIM request is answered; a generic example with another network's key may be refused (a warning).
    assert s["search-examples"] is not Status.FAIL and "eucaim_api_just_right" not in evidence(report, "search-examples")
    # Tier 3: verified as `eucaim-node dataset verify` does; with no dataset defined yet, a warning.
    assert s["datasets-verify"] is not Status.FAIL and "materialised dataset(s) verify" in evidence(report, "datasets-verify")
    # What other tests of the session sent (quarantined instances, flagged series) may warn, never fail.
    assert report.ready and report.exit_code == 0
    assert "the node's token: 200; no token: 401" in evidence(report, "search-auth")
    assert "0 violations" in evidence(report, "catalogue-valid")


def test_a_missing_search_token_is_a_search_failure(stack, published):
    token_file = stack.search_token_file()
    moved = token_file.with_name(token_file.name + ".readiness-test")
    token_file.rename(moved)
    try:
        report = report_for(stack, source_address="127.0.0.3")
    finally:
        moved.rename(token_file)
    s = statuses(report)
    assert s["search-auth"] is Status.FAIL and "token missing" in evidence(report, "search-auth")
    assert s["search-examples"] is Status.FAIL
    assert s["catalogue-valid"] is Status.PASS and s["store"] is Status.PASS  # only what the token breaks
    assert report.exit_code == 1


def test_an_invalid_catalogue_is_a_tier1_failure(stack, observer, published):
    versions = observer.db[collections.CATALOGUE_DATASET_VERSIONS]
    latest = versions.find_one({"collection_id": published}, sort=[("version", -1)])
    graph = Graph().parse(data=latest["turtle"], format="turtle")
    graph.remove((None, HDAB, None))  # a mandatory property of a NON_PUBLIC dataset
    number = latest["version"] + 1
    broken = {**latest, "_id": f"{published}@{number:06d}", "version": number, "turtle": graph.serialize(format="turtle"),
              "delivery": {**latest["delivery"], "status": "not-configured"}}
    versions.insert_one(broken)
    try:
        report = report_for(stack, source_address="127.0.0.4")
    finally:
        versions.delete_one({"_id": broken["_id"]})
    s = statuses(report)
    assert s["catalogue-valid"] is Status.FAIL
    assert "SHACL violation" in evidence(report, "catalogue-valid") and "hdab" in evidence(report, "catalogue-valid")
    assert s["search-auth"] is Status.PASS and report.exit_code == 1
    assert statuses(report_for(stack, source_address="127.0.0.4"))["catalogue-valid"] is Status.PASS  # restored


def test_a_store_down_is_a_failure_of_the_store_and_of_what_needs_it(stack, published):
    stack.stop("ferretdb")
    try:
        report = report_for(stack, source_address="127.0.0.5")
    finally:
        stack.start("ferretdb")
    s = statuses(report)
    assert s["store"] is Status.FAIL and "unreachable" in evidence(report, "store")
    assert s["catalogue-valid"] is Status.FAIL and "store is unreachable" in evidence(report, "catalogue-valid")
    assert s["ledger"] is Status.FAIL and s["data-quality"] is Status.FAIL
    assert s["small-cells"] is Status.PASS and s["deid-guard"] is Status.PASS  # settings need no store
    assert report.exit_code == 1
    # The services reconnect by themselves: the node is healthy again.
    recovered = ("store", "catalogue-valid", "ledger", "data-quality")

    def healthy_again():
        s = statuses(report_for(stack, source_address="127.0.0.6"))
        return all(s[c] is not Status.FAIL for c in recovered)

    wait_for(healthy_again, 120, "the node to recover from the store's restart")


def cli_env(stack) -> dict[str, str]:
    """``EUCAIM_STACK_*`` naming the session's stack, so the command checks it rather than a `make up` node."""
    settings = stack.settings
    env = {f"EUCAIM_STACK_{field.upper()}": str(getattr(settings, field)) for field in PORT_FIELDS}
    return {**env, "EUCAIM_STACK_NAME": settings.name, "EUCAIM_STACK_STATE_DIR": str(stack.state_dir),
            "EUCAIM_STACK_STABLE_AGE": str(settings.stable_age), "EUCAIM_STACK_EXPORT_TRACES": str(settings.export_traces)}


def run_cli(stack, *args: str, command: tuple[str, ...] = ("readiness", "--source-address", "127.0.0.7")):
    """In its own thread: the command runs asyncio.run() for the ledger check."""
    outcome = []
    command = [*command, *args]
    thread = threading.Thread(target=lambda: outcome.append(CliRunner().invoke(cli, command, env=cli_env(stack))))
    thread.start()
    thread.join()
    return outcome[0]


def test_the_command_prints_text_and_json_and_exits_by_the_verdict(stack, published):
    text = run_cli(stack)
    assert text.exit_code == 0, text.output
    assert "[PASS] The federated search is on and authenticated" in text.stdout and "\nREADY (" in text.stdout
    data = json.loads(run_cli(stack, "--format", "json").stdout)
    assert data["ready"] is True and {c["id"] for c in data["checks"]} >= set(ALWAYS_PASS)
    token_file = stack.search_token_file()
    moved = token_file.with_name(token_file.name + ".readiness-cli")
    token_file.rename(moved)
    try:
        failing = run_cli(stack, "--format", "json")
    finally:
        moved.rename(token_file)
    assert failing.exit_code == 1
    assert {c["id"]: c["status"] for c in json.loads(failing.stdout)["checks"]}["search-auth"] == "fail"


def test_the_html_report_shows_the_verdict_and_every_check_in_chromium(stack, published, tmp_path):
    page = tmp_path / "readiness.html"
    token_file = stack.search_token_file()
    moved = token_file.with_name(token_file.name + ".readiness-html")
    token_file.rename(moved)
    try:
        result = run_cli(stack, "--format", "html", "--output", str(page))
    finally:
        moved.rename(token_file)
    assert result.exit_code == 1 and page.is_file()
    dom = dump_dom(page.as_uri())
    assert 'id="verdict"' in dom and "NOT READY" in dom
    assert dom.count('class="check"') == len(CHECKS)
    assert 'data-check="search-auth" data-status="fail"' in dom and 'data-check="store" data-status="pass"' in dom
    for area in ("Tier 1", "Tier 2", "Tier 3", "De-identification", "Security", "Data quality"):
        assert area in dom
    # What a person sees: the rendered page, read back by OCR.
    png = screenshot(page.as_uri(), tmp_path / "readiness.png", width=1200, height=2400)
    seen = subprocess.run(["tesseract", str(png), "-", "--psm", "3"], capture_output=True, text=True, check=True).stdout
    assert "NOT READY" in seen and "FAIL" in seen and "PASS" in seen and "federated search" in seen.lower()
    assert "token missing" in seen


def test_make_up_prints_the_readiness_report_last(stack, published):
    """`up` on the running node (its components healthy, so left alone) ends with the text report."""
    result = run_cli(stack, "--no-sample", "--no-follow", command=("up",))
    assert result.exit_code == 0, result.output
    tail = result.stdout.rstrip().splitlines()
    assert tail[-1].startswith(("READY (", "NOT READY (")) and "EUCAIM readiness of " in result.stdout
    assert result.stdout.index("All components healthy") < result.stdout.index("EUCAIM readiness of ")
