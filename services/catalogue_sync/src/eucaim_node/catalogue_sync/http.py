"""The node's federation HTTP API, served by catalogue-sync beside its health endpoints.

- ``POST /federation/search`` (alias ``/api/datasets/eucaimSearch``, the reference node's path):
  the EUCAIM federated search (Tier 2). ``Authorization: Secret <token>`` (or ``Bearer``), JSON body
  ``{"ast": ..., "id": ...}``; answers per-collection counts with small-cell protection. Errors are
  ``{"error", "status_code"}``: 400 unreadable JSON, 401 no or wrong secret, 404 search not enabled,
  413 body too large, 415 not JSON, 422 a query this node cannot evaluate, 503 a dependency down.
- ``GET /catalogue`` and ``GET /catalogue/datasets/<collection>`` (``?version=N`` for an earlier
  version): the HealthDCAT-AP descriptions (Tier 1), read-only, Turtle or JSON-LD by ``Accept`` or
  ``?format=ttl|jsonld``.

Every query and every catalogue read is recorded as an ``AccessRecorded`` event (who, what, result
size; never the raw count of a suppressed cell) before the answer is sent; if it cannot be recorded,
the request fails (503) rather than going unaudited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream.asgi import AsgiResponse, Request, get, post
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from rdflib import Graph

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.config import CollectionsConfig
from eucaim_node.catalogue.results import Protection
from eucaim_node.catalogue.search import QueryCompiler, QueryError
from eucaim_node.catalogue.store import noise_secret, run_search
from eucaim_node.events import AccessRecorded, Event

from .adapters.versions import MongoVersionStore

log = logging.getLogger("eucaim_node.catalogue_sync.http")
PRODUCER = "catalogue-sync"
MAX_BODY = 256 * 1024
SEARCH_PATHS = ("/federation/search", "/api/datasets/eucaimSearch")


def _json(status: int, body: Any) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, headers={"content-type": "application/json"})


def _error(status: int, message: str) -> AsgiResponse:
    return _json(status, {"error": message, "status_code": status})


def _client(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass
class FederationApi:
    db: AsyncDatabase
    config: CollectionsConfig
    versions: MongoVersionStore
    publish: Callable[[Event], Awaitable[None]]
    tokens: dict[str, str]
    protection_for: Callable[[bytes], Protection]
    compiler: QueryCompiler

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
        if not self.tokens:
            return _error(404, "federated search is not enabled on this node (no EUCAIM_SEARCH_TOKEN_FILE)")
        headers = request.headers
        principal = self._principal(headers)
        if principal is None:
            try:
                await self._audit(f"unauthenticated@{_client(scope)}", "federated-search", None, "denied",
                                  f"search:{request_id}", {"reason": "missing or wrong secret"})
            except Exception:
                log.exception("could not record a denied search")
            return _error(401, "missing or wrong 'Authorization: Secret <token>' header")
        actor = f"search:{principal}"
        if "application/json" not in headers.get("content-type", "").lower():
            return _error(415, "the body must be JSON (Content-Type: application/json)")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, f"the query is larger than {MAX_BODY} bytes")
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
            answer = await run_search(self.db, query, self.config, self.protection_for(await noise_secret(self.db)))
            await self._audit(actor, "federated-search", None, "success", f"search:{request_id}", {
                "query_sha256": hashlib.sha256(query.canonical.encode()).hexdigest(),
                "query": query.canonical[:1000], "conditions": query.conditions, "keys": ",".join(query.keys),
                "collections_reported": answer.reported_collections,
                "studies_reported": answer.body["total"]["studies_count"],
                "subjects_reported": answer.body["total"]["subjects_count"],
                "suppressed_cells": answer.suppressed_cells})
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

    async def _read_audit(self, scope: dict[str, Any], target: str, detail: dict[str, Any]) -> None:
        await self._audit(f"http:{_client(scope)}", "catalogue-read", target, "success", f"read:{uuid.uuid4()}", detail)

    async def catalogue(self, scope: dict[str, Any], request: Request) -> AsgiResponse:
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
            await self._read_audit(scope, "catalogue", {"format": fmt, "datasets": len(datasets)})
        except Exception as exc:
            log.warning("catalogue read failed", extra={"error": type(exc).__name__})
            return _error(503, "the catalogue is unavailable; try again later")
        return self._respond(graph, fmt)

    def dataset_handler(self, collection_id: str):
        async def dataset(scope: dict[str, Any], request: Request) -> AsgiResponse:
            fmt = self._format(request)
            if fmt is None:
                return _error(400, "format must be ttl or jsonld")
            raw_version = (request.query_params.get("version") or [""])[0]
            if raw_version and not raw_version.isdigit():
                return _error(400, "version must be a positive integer")
            try:
                doc = (await self.versions.get(collection_id, int(raw_version)) if raw_version
                       else await self.versions.latest(collection_id))
                if doc is None:
                    return _error(404, f"collection {collection_id!r} has no published version"
                                       + (f" {raw_version}" if raw_version else " yet"))
                graph = dcat.new_graph()
                graph.parse(data=doc["turtle"], format="turtle")
                await self._read_audit(scope, collection_id, {"format": fmt, "version": doc["version"]})
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
