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
from eucaim_node.events import AccessRecorded, Event
from eucaim_node.runtime.body import BodyTooLarge, read_bounded_body

from .adapters.search_index import SearchIndex
from .adapters.versions import MongoVersionStore
from .core.ratelimit import ClientLimits, Verdict, rate_limit_key

log = logging.getLogger("eucaim_node.catalogue_sync.http")
PRODUCER = "catalogue-sync"
SEARCH_PATHS = ("/federation/search", "/api/datasets/eucaimSearch")


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
            dcat.add_catalog(graph, self.config, datasets, modified)
            await self._read_audit(actor, "catalogue", {"format": fmt, "datasets": len(datasets)})
        except Exception as exc:
            log.warning("catalogue read failed", extra={"error": type(exc).__name__})
            return _error(503, "the catalogue is unavailable; try again later")
        return self._respond(graph, fmt)

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

    def routes(self) -> list[tuple[str, Any]]:
        search = post(self.search, include_in_schema=False)
        catalogue = get(self.catalogue, include_in_schema=False)
        routes: list[tuple[str, Any]] = [(path, search) for path in SEARCH_PATHS]
        routes.append(("/catalogue", catalogue))
        for collection in self.config.collections:
            routes.append((f"/catalogue/datasets/{collection.id}",
                           get(self.dataset_handler(collection.id), include_in_schema=False)))
        return routes
