"""The node's federation HTTP API, served by catalogue-sync beside its health endpoints.

- ``POST /federation/search`` (alias ``/api/datasets/eucaimSearch``, the reference node's path):
  the EUCAIM federated search (Tier 2). ``Authorization: Secret <token>`` (or ``Bearer``), JSON body
  ``{"ast": ..., "id": ...}``; answers per-collection counts with small-cell protection. Errors are
  ``{"error", "status_code"}``: 400 unreadable JSON, 401 no or wrong secret, 404 search not enabled,
  413 body too large, 415 not JSON, 422 a query this node cannot evaluate, 429 too many requests from
  the address (``Retry-After``), 503 a dependency down.
- ``GET /catalogue`` and ``GET /catalogue/datasets/<collection>``: the current HealthDCAT-AP descriptions
  (Tier 1), public, read-only, Turtle or JSON-LD by ``Accept`` or ``?format=ttl|jsonld``; ``?version=N``
  for an earlier version only with a harvester's token (same header and token file as the search).

Exposure limits (decision 0072), per client address (an IPv6 client per /64 prefix): requests without a valid token share one token
bucket, and searches without a valid token (or a wrong token anywhere) another, smaller one; an
exhausted bucket answers 429 with ``Retry-After`` (a login budget is checked before the token, so a
locked-out address cannot go on guessing). Search bodies are read as a stream up to a bound and
refused with 413 the moment they exceed it, whatever ``Content-Length`` says.

Every query and every catalogue read is recorded as an ``AccessRecorded`` event (who, what, result
size; never the raw count of a suppressed cell) before the answer is sent; if it cannot be recorded,
the request fails (503) rather than going unaudited.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream.asgi import AsgiResponse, Request, get, post
from faststream.asgi.request import ClientDisconnectError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from rdflib import Graph

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.config import CollectionsConfig
from eucaim_node.catalogue.results import Protection
from eucaim_node.catalogue.search import QueryCompiler, QueryError
from eucaim_node.catalogue.store import (
    answer_from_rows,
    noise_secret,
    published_collections,
    run_search,
    search_audit_detail,
)
from eucaim_node.datasets import DatasetStore, State, is_dataset_id
from eucaim_node.datasets import rest as dataset_rest
from eucaim_node.events import AccessRecorded, Event
from eucaim_node.runtime.body import BodyTooLarge, read_bounded_body

from .adapters.search_index import SearchIndex
from .adapters.versions import MongoVersionStore
from .core.publication import Coarsening
from .core.ratelimit import ClientLimits, Verdict, rate_limit_key

log = logging.getLogger("eucaim_node.catalogue_sync.http")
PRODUCER = "catalogue-sync"
SEARCH_PATHS = ("/federation/search", "/api/datasets/eucaimSearch")
DATASETS_PATH = "/api/datasets"
#: Registered so FastStream configures the handler; real IDs reach it through dataset_prefix_dispatch.
DATASET_DETAIL_PATH = "/api/datasets/{id}"


def _json(status: int, body: Any) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, headers={"content-type": "application/json"})


def _error(status: int, message: str) -> AsgiResponse:
    return _json(status, {"error": message, "status_code": status})


def _too_many(verdict: Verdict, message: str) -> AsgiResponse:
    return AsgiResponse(json.dumps({"error": message, "status_code": 429}).encode(), 429,
                        headers={"content-type": "application/json", "retry-after": str(verdict.retry_after)})


@dataclass
class FederationApi:
    db: AsyncDatabase
    config: CollectionsConfig
    versions: MongoVersionStore
    publish: Callable[[Event], Awaitable[None]]
    tokens: dict[str, str]
    protection_for: Callable[[bytes], Protection]
    compiler: QueryCompiler
    limits: ClientLimits
    max_body: int
    trusted_proxies: frozenset[str] = frozenset()
    index: SearchIndex | None = None  # the studies in memory (decision 0092); None: read the catalogue
    datasets: DatasetStore | None = None
    #: The small-cell rule of the public description, applied to published Tier 3 datasets too.
    coarse: Coarsening | None = None

    def __post_init__(self) -> None:
        self.dataset_detail_handler = get(self.dataset_detail, include_in_schema=False)

    def _client(self, scope: dict[str, Any], headers: dict[str, str]) -> str:
        """The client's address: the TCP peer, or the nearest untrusted hop a trusted proxy forwarded for."""
        peer = str(scope["client"][0]) if scope.get("client") else "unknown"
        if peer not in self.trusted_proxies:
            return peer
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        return next((h for h in reversed(hops) if h not in self.trusted_proxies), peer)

    def _admit(self, client: str, headers: dict[str, str], *, login: bool) -> tuple[str | None, AsgiResponse | None]:
        """(the token's client name or None, a 429 refusal or None). ``login``: a token is required here, so a
        request without a valid one is a failed login; elsewhere only a wrong token is."""
        attempt = login or "authorization" in headers
        bucket = rate_limit_key(client)
        if attempt:
            blocked = self.limits.failed_logins.check(bucket)
            if not blocked.allowed:
                return None, _too_many(blocked, "too many failed logins from this address; retry later")
        principal = self._principal(headers)
        if principal is not None:
            return principal, None
        if attempt:
            self.limits.failed_logins.take(bucket)
        return None, self._anonymous(client)

    def _anonymous(self, client: str) -> AsgiResponse | None:
        """Spend one unauthenticated request of ``client``'s budget; a 429 if none is left."""
        verdict = self.limits.anonymous.take(rate_limit_key(client))
        if not verdict.allowed:
            return _too_many(verdict, "too many unauthenticated requests from this address; retry later")
        return None

    async def _audit(self, actor: str, action: str, target: str | None, outcome: str, cause: str,
                     detail: dict[str, Any]) -> None:
        await self.publish(AccessRecorded.create(cause=cause, producer=PRODUCER, actor=actor, action=action,
                                                 target=target, outcome=outcome, detail=detail))

    def _principal(self, headers: dict[str, str]) -> str | None:
        scheme, _, secret = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() not in ("secret", "bearer") or not secret:
            return None
        for token, name in self.tokens.items():
            if hmac.compare_digest(secret.strip().encode(), token.encode()):
                return name
        return None

    # -- Tier 2 ----------------------------------------------------------------------------------------

    async def search(self, scope: dict[str, Any], request: Request) -> AsgiResponse:
        request_id = str(uuid.uuid4())
        headers = request.headers
        client = self._client(scope, headers)
        if not self.tokens:
            return self._anonymous(client) or _error(
                404, "federated search is not enabled on this node (no EUCAIM_SEARCH_TOKEN_FILE)")
        principal, refusal = self._admit(client, headers, login=True)
        if refusal is not None:
            return refusal
        if principal is None:
            try:
                await self._audit(f"unauthenticated@{client}", "federated-search", None, "denied",
                                  f"search:{request_id}", {"reason": "missing or wrong secret"})
            except Exception:
                log.exception("could not record a denied search")
            return _error(401, "missing or wrong 'Authorization: Secret <token>' header")
        actor = f"search:{principal}"
        if "application/json" not in headers.get("content-type", "").lower():
            return _error(415, "the body must be JSON (Content-Type: application/json)")
        try:
            body = await read_bounded_body(headers.get("content-length"), request.stream(), self.max_body)
        except BodyTooLarge:
            return _error(413, f"the query is larger than {self.max_body} bytes")
        except ClientDisconnectError:
            return _error(400, "the client went away before the body was complete")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return _error(400, f"the body is not valid JSON: {exc}")
        try:
            query = self.compiler.compile_request(payload)
        except QueryError as exc:
            await self._safe_audit(actor, "federated-search", None, "failure", f"search:{request_id}",
                                   {"error": str(exc)[:300]})
            return _error(422, str(exc))
        try:
            protection = self.protection_for(await noise_secret(self.db))
            if self.index is not None:
                rows = await self.index.rows(sorted(published_collections(self.config)))
                answer = answer_from_rows(rows, query, self.config, protection)
            else:
                answer = await run_search(self.db, query, self.config, protection)
            await self._audit(actor, "federated-search", None, "success", f"search:{request_id}",
                              search_audit_detail(query, answer))
        except PyMongoError as exc:
            log.warning("search failed: catalogue unavailable", extra={"error": type(exc).__name__})
            return _error(503, "the catalogue is unavailable; try again later")
        except Exception as exc:
            log.warning("search not recorded: refused", extra={"error": type(exc).__name__})
            return _error(503, "the query could not be recorded in the audit log; try again later")
        log.info("federated search answered", extra={"actor": actor, "conditions": query.conditions,
                                                      "collections_reported": answer.reported_collections,
                                                      "suppressed_cells": answer.suppressed_cells})
        return _json(200, answer.body)

    async def _safe_audit(self, *args: Any) -> None:
        try:
            await self._audit(*args)
        except Exception:
            log.exception("could not record a failed search")

    # -- Tier 1 ----------------------------------------------------------------------------------------

    @staticmethod
    def _format(request: Request) -> str | None:
        wanted = (request.query_params.get("format") or [""])[0].lower()
        if wanted:
            return {"ttl": "ttl", "turtle": "ttl", "jsonld": "jsonld", "json-ld": "jsonld"}.get(wanted)
        accept = request.headers.get("accept", "")
        return "jsonld" if ("ld+json" in accept or "application/json" in accept) else "ttl"

    def _respond(self, graph: Graph, fmt: str) -> AsgiResponse:
        _, media = dcat.FORMATS[fmt]
        return AsgiResponse(dcat.serialise(graph, fmt).encode(), 200,
                            headers={"content-type": media, "vary": "Accept", "cache-control": "no-cache"})

    async def _read_audit(self, actor: str, target: str, detail: dict[str, Any]) -> None:
        await self._audit(actor, "catalogue-read", target, "success", f"read:{uuid.uuid4()}", detail)

    def _reader(self, scope: dict[str, Any], request: Request) -> tuple[str, str | None, AsgiResponse | None]:
        """(the audited actor, the harvester's name if it presented a valid token, a refusal or None)."""
        client = self._client(scope, request.headers)
        principal, refusal = self._admit(client, request.headers, login=False)
        if refusal is None and principal is None and "authorization" in request.headers:
            refusal = _error(401, "wrong 'Authorization: Secret <token>' header")
        return (f"harvester:{principal}" if principal else f"http:{client}"), principal, refusal

    async def catalogue(self, scope: dict[str, Any], request: Request) -> AsgiResponse:
        actor, _, refusal = self._reader(scope, request)
        if refusal is not None:
            return refusal
        fmt = self._format(request)
        if fmt is None:
            return _error(400, "format must be ttl or jsonld")
        try:
            graph = dcat.new_graph()
            datasets, modified = [], None
            for collection in self.config.collections:
                latest = await self.versions.latest(collection.id)
                if latest is None:
                    continue
                graph.parse(data=latest["turtle"], format="turtle")
                datasets.append(dcat.URIRef(dcat.dataset_iri(self.config, collection.id)))
                modified = max(modified or latest["created_at"], latest["created_at"])
            datasets += await self._published_tier3(graph)
            dcat.add_catalog(graph, self.config, datasets, modified)
            await self._read_audit(actor, "catalogue", {"format": fmt, "datasets": len(datasets)})
        except Exception as exc:
            log.warning("catalogue read failed", extra={"error": type(exc).__name__})
            return _error(503, "the catalogue is unavailable; try again later")
        return self._respond(graph, fmt)

    async def _published_tier3(self, graph: Graph) -> list[Any]:
        """Published, valid Tier 3 dataset versions whose source collection this node describes."""
        if self.datasets is None or self.coarse is None:
            return []
        known = {c.id for c in self.config.collections}
        nodes = []
        for d in await self.datasets.list(state=State.PUBLISHED):
            if d.invalidated or d.deleted or not d.collections or d.collections[0] not in known:
                continue
            nodes.append(dcat.add_tier3_dataset(graph, self.config, dcat.Tier3Dataset(
                id=d.id, name=d.name, description=d.description, version=d.version, released=d.released_at,
                published=d.published_at, source_collection=d.collections[0],
                studies=self.coarse.count(len(d.studies)), subjects=self.coarse.count(len(d.subjects)),
                previous_id=d.previous_id)))
        return nodes

    def dataset_handler(self, collection_id: str):
        async def dataset(scope: dict[str, Any], request: Request) -> AsgiResponse:
            actor, harvester, refusal = self._reader(scope, request)
            if refusal is not None:
                return refusal
            fmt = self._format(request)
            if fmt is None:
                return _error(400, "format must be ttl or jsonld")
            raw_version = (request.query_params.get("version") or [""])[0]
            if raw_version and not raw_version.isdigit():
                return _error(400, "version must be a positive integer")
            try:
                doc = await self.versions.latest(collection_id)
                if raw_version and (doc is None or doc["version"] != int(raw_version)):
                    # Earlier versions may hold what the current coarsening no longer publishes: harvesters only.
                    if harvester is None:
                        return _error(401, "earlier versions are served to authenticated harvesters only "
                                           "('Authorization: Secret <token>'); the current version is public")
                    doc = await self.versions.get(collection_id, int(raw_version))
                if doc is None:
                    return _error(404, f"collection {collection_id!r} has no published version"
                                       + (f" {raw_version}" if raw_version else " yet"))
                graph = dcat.new_graph()
                graph.parse(data=doc["turtle"], format="turtle")
                await self._read_audit(actor, collection_id, {"format": fmt, "version": doc["version"]})
            except Exception as exc:
                log.warning("dataset read failed", extra={"error": type(exc).__name__})
                return _error(503, "the catalogue is unavailable; try again later")
            return self._respond(graph, fmt)

        return dataset

    # -- Tier 3 datasets (read-only, the dataset-service's REST shape) ----------------------------------------

    async def _dataset_reader(self, scope: dict[str, Any], request: Request) -> tuple[str | None, AsgiResponse | None]:
        """Datasets are for the federation's clients only: the search's token, or 401 (and the failed-login budget)."""
        principal, refusal = self._admit(self._client(scope, request.headers), request.headers, login=True)
        if refusal is not None:
            return None, refusal
        if principal is None:
            return None, _error(401, "missing or wrong 'Authorization: Secret <token>' header")
        if self.datasets is None:
            return None, _error(404, "datasets are not served by this node")
        return f"search:{principal}", None

    async def dataset_list(self, scope: dict[str, Any], request: Request) -> AsgiResponse:
        actor, refusal = await self._dataset_reader(scope, request)
        if refusal is not None:
            return refusal
        try:
            found = [d for d in await self.datasets.list() if not d.deleted and d.state is not State.DRAFT]
            await self._audit(actor, "dataset-read", None, "success", f"read:{uuid.uuid4()}", {"datasets": len(found)})
        except Exception as exc:
            log.warning("dataset list failed", extra={"error": type(exc).__name__})
            return _error(503, "the datasets are unavailable; try again later")
        return _json(200, {"total": len(found), "list": [dataset_rest.summary(d) for d in found]})

    async def dataset_detail(self, scope: dict[str, Any], request: Request) -> AsgiResponse:
        actor, refusal = await self._dataset_reader(scope, request)
        if refusal is not None:
            return refusal
        dataset_id = scope["path"].rsplit("/", 1)[-1]
        if not is_dataset_id(dataset_id):
            return _error(400, "not a dataset ID")
        try:
            dataset = await self.datasets.get(dataset_id)
            visible = dataset is not None and not dataset.deleted and dataset.state is not State.DRAFT
            await self._audit(actor, "dataset-read", dataset_id, "success" if visible else "failure",
                              f"read:{uuid.uuid4()}", {"found": visible})
        except Exception as exc:
            log.warning("dataset read failed", extra={"error": type(exc).__name__})
            return _error(503, "the datasets are unavailable; try again later")
        if not visible:
            return _error(404, f"no released dataset {dataset_id}")
        return _json(200, dataset_rest.detail(dataset))

    def dataset_prefix_dispatch(self, detail_handler: Any, fallback: Any):
        """``/api/datasets/<id>``: FastStream's ASGI routes match whole paths, so one handler takes the prefix."""
        async def dispatch(scope, receive, send) -> None:
            path = scope.get("path", "")
            if scope.get("type") == "http" and path.startswith(DATASETS_PATH + "/") and path.count("/") == 3:
                await detail_handler(scope, receive, send)
                return
            await fallback(scope, receive, send)

        return dispatch

    def routes(self) -> list[tuple[str, Any]]:
        search = post(self.search, include_in_schema=False)
        catalogue = get(self.catalogue, include_in_schema=False)
        routes: list[tuple[str, Any]] = [(path, search) for path in SEARCH_PATHS]
        routes.append(("/catalogue", catalogue))
        routes.append((DATASETS_PATH, get(self.dataset_list, include_in_schema=False)))
        routes.append((DATASET_DETAIL_PATH, self.dataset_detail_handler))
        for collection in self.config.collections:
            routes.append((f"/catalogue/datasets/{collection.id}",
                           get(self.dataset_handler(collection.id), include_in_schema=False)))
        return routes
