"""The federation API's exposure against the real stack (issue 9, item 5): the search is on and authenticated
in the test profile, unauthenticated requests and failed logins are rate-limited per address, bodies are
bounded while they stream, the public catalogue shows no small cell, and earlier versions need a token.

Each test speaks from its own loopback address (127.0.0.x: Linux routes the whole block to lo), so the
per-address budgets it spends are its own and no other test module meets a 429.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, RDF

from eucaim_node.store.collections import CATALOGUE_DATASET_VERSIONS
from eucaim_node.cli.walkthrough import push_sample
from eucaim_test_support.waiting import wait_for

pytestmark = [pytest.mark.integration]

HEALTH = "http://healthdataportal.eu/ns/health#"
EVERYTHING = {"ast": {"operand": "OR", "children": []}, "id": "exposure"}
DEFAULT_MIN_COUNT = 10  # EUCAIM_SEARCH_MIN_COUNT's default: the test profile runs the production defaults


def client(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def base(stack) -> str:
    return stack.search_url().removesuffix("/federation/search")


def secret(stack) -> dict[str, str]:
    return {"authorization": f"Secret {stack.search_token()}"}

def test_search_is_on_and_authenticated_in_the_test_profile(stack):
    with client("127.0.0.11") as http:
        refused = http.post(stack.search_url(), json=EVERYTHING)
        assert refused.status_code == 401, refused.text
        answered = http.post(stack.search_url(), json=EVERYTHING, headers=secret(stack))
        assert answered.status_code == 200, answered.text
        assert set(answered.json()) == {"collections", "total"}


def _raw_request(stack, source: str, head: str, body_chunks: list[bytes]) -> str:
    """Send ``head`` and then ``body_chunks`` (never the chunked body's end); return the status line."""
    host, port = stack.search_url().split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=60, source_address=(source, 0)) as sock:
        sock.sendall(head.encode())
        for chunk in body_chunks:
            sock.sendall(chunk)
        received = b""
        while b"\r\n" not in received:
            data = sock.recv(4096)
            assert data, "the server closed the connection without an answer"
            received += data
        return received.split(b"\r\n")[0].decode()


def test_an_oversized_body_is_refused_while_it_streams(stack):
    """A chunked body without Content-Length that is never finished: a server that buffers the whole body
    before checking its size would wait for ever (the socket times out and the test fails)."""
    head = (f"POST /federation/search HTTP/1.1\r\nHost: node\r\nAuthorization: Secret {stack.search_token()}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b" " * 16384
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 20  # 320 KiB > the 256 KiB bound, and no final 0-chunk
    assert _raw_request(stack, "127.0.0.15", head, chunks).split(" ")[1] == "413"
    # A Content-Length above the bound is refused before any of the body is read.
    declared = (f"POST /federation/search HTTP/1.1\r\nHost: node\r\nAuthorization: Secret {stack.search_token()}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    assert _raw_request(stack, "127.0.0.15", declared, []).split(" ")[1] == "413"


@pytest.fixture(scope="module")
def published(stack, observer, tmp_path_factory):
    """One study of the sample patient catalogued, and its collection's description published."""
    sample = push_sample(stack, tmp_path_factory.mktemp("exposure"), seed=f"exposure-{os.urandom(3).hex()}",
                         series=1, instances_per_series=2)
    key = observer.study_key(sample.study_instance_uid)
    study = wait_for(lambda: observer.db["catalogue_studies"].find_one({"_id": key}), 180, "the study to be catalogued")
    collection = study["collection_id"]
    versions = observer.db[CATALOGUE_DATASET_VERSIONS]
    wait_for(lambda: versions.find_one({"collection_id": collection}), 60, "a published version")
    return collection


def test_the_public_catalogue_shows_no_count_below_the_minimum(stack, published):
    response = httpx.get(base(stack) + "/catalogue", headers={"accept": "text/turtle"}, timeout=30)
    assert response.status_code == 200
    graph = Graph().parse(data=response.text, format="turtle")
    counts = [int(o) for p in ("numberOfRecords", "numberOfUniqueIndividuals")
              for o in graph.objects(None, URIRef(HEALTH + p))]
    assert all(n >= DEFAULT_MIN_COUNT for n in counts), counts
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert URIRef(f"{base(stack)}/catalogue/datasets/{published}") in datasets or any(
        str(d).endswith(f"/catalogue/datasets/{published}") for d in datasets)  # described, without small counts


def test_the_token_file_is_private(stack):
    assert Path(stack.search_token_file()).stat().st_mode & 0o777 == 0o600


# -- with catalogue-sync restarted: budgets that do not refill during a test, and counts published from 1 --------

FAILED_LOGINS, ANONYMOUS = 3, 8
RESTART_ENV = {
    # One token a day: what a test spends stays spent however slowly it runs (no timing in the test).
    "EUCAIM_FEDERATION_FAILED_LOGINS": str(FAILED_LOGINS), "EUCAIM_FEDERATION_FAILED_LOGIN_PERIOD_SECONDS": "86400",
    "EUCAIM_FEDERATION_ANONYMOUS_REQUESTS": str(ANONYMOUS), "EUCAIM_FEDERATION_ANONYMOUS_PERIOD_SECONDS": "86400",
    # A different coarsening makes a new version of the description at start-up (reconciliation).
    "EUCAIM_SEARCH_MIN_COUNT": "1", "EUCAIM_CATALOGUE_COUNT_GRANULARITY": "1",
}


@pytest.fixture(scope="module")
def restarted(stack, observer, published):
    """(collection, its version before the restart, its version after)."""
    versions = observer.db[CATALOGUE_DATASET_VERSIONS]

    def newest() -> int:
        return versions.find_one({"collection_id": published}, sort=[("version", -1)])["version"]

    before = newest()
    with pytest.MonkeyPatch.context() as env:
        for name, value in RESTART_ENV.items():
            env.setenv(name, value)
        try:
            stack.restart("catalogue_sync")
            after = wait_for(lambda: newest() > before and newest(), 60, "a new version")
            yield published, before, after
        finally:
            env.undo()
            stack.restart("catalogue_sync")


def test_failed_logins_from_one_address_are_refused_with_429(stack, restarted):
    with client("127.0.0.12") as http, client("127.0.0.13") as other:
        wrong = {"authorization": "Secret not-the-token-0123456789"}
        statuses = [http.post(stack.search_url(), json=EVERYTHING, headers=wrong).status_code for _ in range(FAILED_LOGINS)]
        assert statuses == [401] * FAILED_LOGINS
        locked = http.post(stack.search_url(), json=EVERYTHING, headers=wrong)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1, locked.text
        # Locked out means the token is not even checked: guessing cannot go on (the right one is refused too).
        assert http.post(stack.search_url(), json=EVERYTHING, headers=secret(stack)).status_code == 429
        # Another address is not affected.
        assert other.post(stack.search_url(), json=EVERYTHING, headers=secret(stack)).status_code == 200


def test_unauthenticated_requests_beyond_the_budget_get_429(stack, restarted):
    with client("127.0.0.14") as http:
        statuses = [http.get(base(stack) + "/catalogue").status_code for _ in range(ANONYMOUS)]
        assert statuses == [200] * ANONYMOUS
        over = http.get(base(stack) + "/catalogue")
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1, over.text
        # A harvester with the token is not limited by the anonymous budget.
        assert http.get(base(stack) + "/catalogue", headers=secret(stack)).status_code == 200


def test_earlier_versions_are_served_to_authenticated_harvesters_only(stack, restarted):
    collection, before, latest = restarted
    url = f"{base(stack)}/catalogue/datasets/{collection}"
    with client("127.0.0.16") as http:
        assert http.get(url).status_code == 200  # the current version is public
        assert http.get(f"{url}?version={latest}").status_code == 200
        refused = http.get(f"{url}?version={before}")
        assert refused.status_code == 401 and "authenticated harvesters" in refused.json()["error"]
        served = http.get(f"{url}?version={before}", headers=secret(stack))
        assert served.status_code == 200 and f'"1.{before - 1}.0"' in served.text
