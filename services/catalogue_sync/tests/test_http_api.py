"""The federation API on FastAPI, in process with in-memory ports: the audit-before-answer rule, the status codes
and headers of each refusal, content negotiation, and the typed search models against real EUCAIM bodies."""

import asyncio
import json
from datetime import UTC, datetime

import pytest
import httpx

from eucaim_node.catalogue.config import load_config
from eucaim_node.catalogue.results import Protection
from eucaim_node.catalogue.search import REQUEST_EXAMPLES_FILE, QueryCompiler
from eucaim_node.catalogue_sync.adapters.inbound.http import PREFIXES, create_http_app
from eucaim_node.catalogue_sync.adapters.inbound.models import SearchRequest, SearchResponse
from eucaim_node.catalogue_sync.core.access import Gate
from eucaim_node.catalogue_sync.core.federation import FederationReads
from eucaim_node.catalogue_sync.core.ratelimit import ClientLimits, TokenBuckets

TOKEN = "focus-token-0123456789abcdef"
AUTH = {"authorization": f"Secret {TOKEN}"}
EVERYTHING = {"ast": {"operand": "OR", "children": []}, "id": "q1"}
TURTLE = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
<https://node.example/catalogue/datasets/default> a dcat:Dataset ."""
DATASET_ID = "0b6f8a52-3c1e-4d2a-9f5b-1a2b3c4d5e6f"


class Rows:
    async def rows(self, collection_ids):
        return [{"collection_id": "default", "subject_key": f"S{i}", "sex": "SNOMEDCT248152002", "age_years": 50 + i,
                 "modalities": ["CT"], "body_parts": ["CHEST"]} for i in range(6)]


class Versions:
    async def latest(self, collection_id):
        return {"version": 2, "turtle": TURTLE, "created_at": datetime(2026, 1, 2, tzinfo=UTC)}

    async def get(self, collection_id, version):
        return {"version": version, "turtle": TURTLE, "created_at": datetime(2026, 1, 1, tzinfo=UTC)} \
            if version == 1 else None


class Datasets:
    async def list(self, **filters):
        return []

    async def get(self, dataset_id):
        return None


class Recorder:
    """Publishes access records into a list, or fails like an unreachable Kafka when ``down``."""

    def __init__(self, journal: list):
        self.journal, self.down = journal, False

    async def __call__(self, event):
        if self.down:
            raise ConnectionError("kafka unreachable")
        self.journal.append(("audit", event.actor, event.action, event.outcome))


async def secret():
    return b"k" * 32


def node(*, tokens=True, anonymous=100, logins=100, max_body=4096, datasets=True, trusted=frozenset()):
    journal: list = []
    recorder = Recorder(journal)
    reads = FederationReads(load_config(None), Rows(), secret, lambda s: Protection("suppress", min_count=3, secret=s),
                            QueryCompiler(), Versions(), recorder, datasets=Datasets() if datasets else None)
    clock = lambda: 0.0  # noqa: E731 - nothing refills
    limits = ClientLimits(TokenBuckets(anonymous, 60, 100, clock), TokenBuckets(logins, 60, 100, clock))
    app = create_http_app(reads, Gate({TOKEN: "focus"} if tokens else {}, limits), max_body=max_body,
                          trusted_proxies=trusted)
    return app, recorder, journal


class InProcess:
    """Requests into the ASGI app in process (httpx's ASGI transport; the peer is 127.0.0.1)."""

    def __init__(self, app):
        self.app = app

    def request(self, method, path, **kwargs):
        async def go():
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)


def test_the_answer_is_sent_only_after_its_access_record_is_published():
    app, recorder, journal = node()

    async def send(message):
        journal.append(("sent", message["type"]))

    # The journal is shared: the recorder appends ("audit", ...), the server appends what it sends.
    body = json.dumps(EVERYTHING).encode()
    headers = [(b"authorization", f"Secret {TOKEN}".encode()), (b"content-type", b"application/json")]

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/federation/search", "raw_path": b"/federation/search",
             "query_string": b"", "headers": headers, "client": ("192.0.2.7", 1), "root_path": "", "scheme": "http",
             "server": ("t", 80), "http_version": "1.1", "asgi": {"version": "3.0"}}
    asyncio.run(app(scope, receive, send))
    assert journal[0] == ("audit", "search:focus", "federated-search", "success")
    assert journal[1] == ("sent", "http.response.start")


@pytest.mark.parametrize(("method", "path", "headers"), [
    ("POST", "/federation/search", {**AUTH, "content-type": "application/json"}),
    ("POST", "/api/datasets/eucaimSearch", {**AUTH, "content-type": "application/json"}),
    ("GET", "/catalogue", {}),
    ("GET", "/catalogue/datasets/default", {}),
    ("GET", "/api/datasets", AUTH),
    ("GET", f"/api/datasets/{DATASET_ID}", AUTH),
])
def test_every_read_fails_with_503_when_its_access_record_cannot_be_published(method, path, headers):
    app, recorder, journal = node()
    recorder.down = True
    response = InProcess(app).request(method, path, headers=headers, content=json.dumps(EVERYTHING))
    assert response.status_code == 503, response.text
    assert response.json() == {"error": "the request could not be recorded in the audit log; try again later",
                               "status_code": 503}
    recorder.down = False
    assert InProcess(app).request(method, path, headers=headers, content=json.dumps(EVERYTHING)).status_code in (200, 404)
    assert journal  # recorded once the audit log is back


def test_the_search_answers_counts_and_records_who_asked():
    app, _, journal = node()
    response = InProcess(app).post("/federation/search", headers=AUTH, json=EVERYTHING)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    [default] = SearchResponse.model_validate(response.json()).collections
    assert (default.id, default.studies_count, default.subjects_count) == ("default", 6, 6)
    assert journal == [("audit", "search:focus", "federated-search", "success")]


@pytest.mark.parametrize(("headers", "body", "status", "message"), [
    ({}, EVERYTHING, 401, "missing or wrong"),
    ({"authorization": "Secret wrong-token-0000000000"}, EVERYTHING, 401, "missing or wrong"),
    ({"authorization": TOKEN}, EVERYTHING, 401, "missing or wrong"),  # no scheme
    ({**AUTH, "content-type": "text/plain"}, b"{}", 415, "Content-Type: application/json"),
    ({**AUTH, "content-type": "application/json"}, b"{not json", 400, "not valid JSON"),
    ({**AUTH, "content-type": "application/json"}, b'{"id": 1}', 422, "missing member 'ast'"),
])
def test_search_refusals_keep_their_status_and_error_body(headers, body, status, message):
    app, _, journal = node()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = InProcess(app).post("/federation/search", headers={"content-type": "application/json", **headers},
                                    content=content)
    assert response.status_code == status and message in response.json()["error"], response.text
    assert response.json()["status_code"] == status
    if status == 401:
        assert journal == [("audit", "unauthenticated@127.0.0.1", "federated-search", "denied")]
    if status == 422:
        assert journal == [("audit", "search:focus", "federated-search", "failure")]


def test_without_a_token_file_the_search_is_off_and_still_spends_the_anonymous_budget():
    app, _, _ = node(tokens=False, anonymous=1)
    client = InProcess(app)
    assert client.post("/federation/search", json=EVERYTHING).status_code == 404
    refused = client.post("/federation/search", json=EVERYTHING)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget_and_is_the_audited_actor():
    app, _, journal = node(anonymous=1, trusted=frozenset({"127.0.0.1"}))  # the in-process peer is the proxy
    client = InProcess(app)
    first = {"x-forwarded-for": "198.51.100.9"}
    assert client.get("/catalogue", headers=first).status_code == 200
    assert client.get("/catalogue", headers=first).status_code == 429
    assert client.get("/catalogue", headers={"x-forwarded-for": "198.51.100.10"}).status_code == 200
    assert [j[1] for j in journal] == ["http:198.51.100.9", "http:198.51.100.10"]
    untrusted, _, journal = node(anonymous=1)
    assert InProcess(untrusted).get("/catalogue", headers=first).status_code == 200
    assert InProcess(untrusted).get("/catalogue", headers={"x-forwarded-for": "198.51.100.10"}).status_code == 429
    assert journal[0][1] == "http:127.0.0.1"  # a header from an untrusted peer names nobody


def test_failed_logins_lock_the_address_out_with_retry_after():
    app, _, _ = node(logins=2)
    client = InProcess(app)
    wrong = {"authorization": "Secret wrong-token-0000000000"}
    assert [client.post("/federation/search", headers=wrong, json=EVERYTHING).status_code for _ in range(3)] == \
        [401, 401, 429]
    locked = client.post("/federation/search", headers=AUTH, json=EVERYTHING)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


@pytest.mark.parametrize(("query", "accept", "media"), [
    ("", "", "text/turtle; charset=utf-8"),
    ("", "application/ld+json", "application/ld+json"),
    ("", "application/json", "application/ld+json"),
    ("?format=ttl", "application/ld+json", "text/turtle; charset=utf-8"),
    ("?format=json-ld", "", "application/ld+json"),
])
def test_the_catalogue_is_negotiated_by_format_then_accept(query, accept, media):
    app, _, journal = node()
    for path in ("/catalogue", "/catalogue/datasets/default"):
        response = InProcess(app).get(path + query, headers={"accept": accept} if accept else {})
        assert response.status_code == 200 and response.headers["content-type"] == media
        assert response.headers["vary"] == "Accept" and response.headers["cache-control"] == "no-cache"
    assert [j[1:] for j in journal] == [("http:127.0.0.1", "catalogue-read", "success")] * 2


def test_catalogue_refusals():
    app, _, _ = node()
    client = InProcess(app)
    assert client.get("/catalogue?format=xml").status_code == 400
    assert client.get("/catalogue/datasets/default?version=x").status_code == 400
    # A digit to str.isdigit() that int() refuses: a 400 in the API's shape, not a 500.
    superscript = client.get("/catalogue/datasets/default?version=%C2%B2")
    assert superscript.status_code == 400 and superscript.json()["error"] == "version must be a positive integer"
    assert client.get("/catalogue/datasets/nope").status_code == 404
    assert client.get("/catalogue", headers={"authorization": "Secret wrong-token-000000000"}).status_code == 401
    earlier = client.get("/catalogue/datasets/default?version=1")
    assert earlier.status_code == 401 and "authenticated harvesters" in earlier.json()["error"]
    assert client.get("/catalogue/datasets/default?version=1", headers=AUTH).status_code == 200
    assert client.get("/catalogue/datasets/default?version=9", headers=AUTH).status_code == 404
    assert client.get("/catalogue/datasets/default?version=2").status_code == 200  # the current one is public


def test_datasets_need_the_search_token():
    app, _, journal = node()
    client = InProcess(app)
    assert client.get("/api/datasets").status_code == 401
    assert client.get("/api/datasets", headers=AUTH).json() == {"total": 0, "list": []}
    assert client.get("/api/datasets/not-an-id", headers=AUTH).status_code == 400
    assert client.get(f"/api/datasets/{DATASET_ID}", headers=AUTH).status_code == 404
    assert journal[-1] == ("audit", "search:focus", "dataset-read", "failure")  # a miss is recorded too
    off, _, _ = node(datasets=False)
    assert InProcess(off).get("/api/datasets", headers=AUTH).status_code == 404


def test_unknown_paths_and_methods_answer_in_the_apis_error_shape():
    app, _, _ = node()
    missing = InProcess(app).get("/catalogue/elsewhere")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found", "status_code": 404}
    wrong = InProcess(app).request("PUT", "/catalogue")
    assert wrong.status_code == 405 and wrong.json()["status_code"] == 405 and wrong.headers["allow"] == "GET"


def test_every_route_lies_under_a_prefix_the_service_mounts():
    app, _, _ = node()
    paths = {route.path for route in app.routes}
    assert paths == {"/federation/search", "/api/datasets/eucaimSearch", "/catalogue",
                     "/catalogue/datasets/{collection_id}", "/api/datasets", "/api/datasets/{dataset_id}"}
    assert all(any(p.startswith(prefix) for prefix in PREFIXES) for p in paths)


def test_the_search_model_accepts_every_real_explorer_request():
    bodies = [json.loads(e["raw"]) for e in json.loads(REQUEST_EXAMPLES_FILE.read_text())["examples"]]
    searches = [b for b in bodies if isinstance(b, dict) and "ast" in b]
    assert len(searches) >= 3
    for body in searches:
        SearchRequest.model_validate(body)


def _post(app, chunks: list[bytes], headers: dict) -> tuple[int, list]:
    """POST /federation/search straight into the ASGI app; the status sent and how many chunks were read."""
    received, sent = [], []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": chunks[len(received) - 1], "more_body": len(received) < len(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "path": "/federation/search", "raw_path": b"/federation/search", "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()], "client": ("192.0.2.7", 1),
             "server": ("t", 80), "scheme": "http"}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], received


def test_the_search_refuses_a_body_past_the_bound_with_413_as_soon_as_it_passes():
    """The bound itself is tested in libs/runtime (eucaim_node.runtime.body); this is the search's use of it."""
    app, _, journal = node(max_body=1024)
    auth = {"authorization": f"Secret {TOKEN}", "content-type": "application/json"}
    status, received = _post(app, [b"x" * 600] * 100, auth)  # 60 KB, no Content-Length
    assert status == 413 and len(received) == 2  # stopped at the chunk that crossed 1024 bytes
    status, received = _post(app, [b"{}"], {**auth, "content-length": "5000"})
    assert status == 413 and received == []
    status, _ = _post(app, [str(EVERYTHING).replace("'", '"').encode()], auth)
    assert status == 200 and journal
