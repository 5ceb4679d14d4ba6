"""What the federation API answers, read through ports, each answer recorded before it is given.

- Tier 2, the EUCAIM federated search: per-collection counts with small-cell protection (decision 0021).
- Tier 1, the HealthDCAT-AP descriptions: the catalogue (every collection's newest version and the published
  Tier 3 datasets) and one collection's description, an earlier version for harvesters only.
- Tier 3 datasets in the dataset-service's REST shape, for the federation's clients.

The rule "an access record is published to audit before the answer is sent; if that fails the request fails"
lives here: every method returns its answer only after :meth:`FederationReads.record` succeeded, and raises
:class:`Unavailable` (503 at the edge) when it did not. Records carry who, what and the result size, never
the raw count of a suppressed cell (``search_audit_detail``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rdflib import Graph, URIRef

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.config import CollectionsConfig
from eucaim_node.catalogue.results import Protection
from eucaim_node.catalogue.search import QueryCompiler, QueryError
from eucaim_node.catalogue.answering import answer_from_rows, published_collections, search_audit_detail
from eucaim_node.datasets.model import State
from eucaim_node.datasets.ports import DatasetStore
from eucaim_node.datasets.rest import detail as dataset_detail
from eucaim_node.datasets.rest import summary as dataset_summary
from eucaim_node.events import AccessRecorded

from ..ports import AccessRecorder, NoiseSecret, PublishedVersions, SearchRows
from .publication import Coarsening

log = logging.getLogger("eucaim_node.catalogue_sync.federation")
PRODUCER = "catalogue-sync"


class FederationError(Exception):
    """A request this node does not answer; the message is shown to the client, with ``status``."""

    status = 500


class InvalidQuery(FederationError):
    """The search's query cannot be evaluated here (422)."""

    status = 422


class NotFound(FederationError):
    """No such published resource (404)."""

    status = 404


class HarvesterOnly(FederationError):
    """Served to authenticated harvesters only (401)."""

    status = 401


class Unavailable(FederationError):
    """A dependency (the catalogue, the datasets, the audit log) is down: try again later (503)."""

    status = 503


AUDIT_DOWN = "the request could not be recorded in the audit log; try again later"


@dataclass
class FederationReads:
    config: CollectionsConfig
    rows: SearchRows
    noise_secret: NoiseSecret
    protection_for: Callable[[bytes], Protection]
    compiler: QueryCompiler
    versions: PublishedVersions
    record_access: AccessRecorder
    datasets: DatasetStore | None = None
    #: The small-cell rule of the public description, applied to published Tier 3 datasets too.
    coarse: Coarsening | None = None

    # -- the audit rule --------------------------------------------------------------------------------------

    async def record(self, actor: str, action: str, target: str | None, outcome: str, cause: str,
                     detail: dict[str, Any]) -> None:
        """Publish the access record, or :class:`Unavailable`: no answer leaves unaudited."""
        try:
            await self.record_access(AccessRecorded.create(cause=cause, producer=PRODUCER, actor=actor, action=action,
                                                           target=target, outcome=outcome, detail=detail))
        except Exception as exc:
            log.warning("access not recorded: request refused", extra={"error": type(exc).__name__})
            raise Unavailable(AUDIT_DOWN) from exc

    async def record_quietly(self, actor: str, action: str, outcome: str, cause: str, detail: dict[str, Any]) -> None:
        """Record a refused request; the refusal is answered whether or not the record could be published."""
        try:
            await self.record(actor, action, None, outcome, cause, detail)
        except Unavailable:
            log.error("could not record a refused request", extra={"action": action})

    # -- Tier 2 ----------------------------------------------------------------------------------------------

    async def record_denied_search(self, client: str, request_id: str) -> None:
        """A search without a valid secret (answered 401): recorded as denied, with the client's address."""
        await self.record_quietly(f"unauthenticated@{client}", "federated-search", "denied", f"search:{request_id}",
                                  {"reason": "missing or wrong secret"})

    async def search(self, actor: str, payload: Any, request_id: str) -> dict[str, Any]:
        """The answer body ``{"collections": [...], "total": {...}}`` to the query ``{"ast": ..., "id": ...}``."""
        cause = f"search:{request_id}"
        try:
            query = self.compiler.compile_request(payload)
        except QueryError as exc:
            await self.record_quietly(actor, "federated-search", "failure", cause, {"error": str(exc)[:300]})
            raise InvalidQuery(str(exc)) from None
        try:
            protection = self.protection_for(await self.noise_secret())
            rows = await self.rows.rows(sorted(published_collections(self.config)))
            answer = answer_from_rows(rows, query, self.config, protection)
        except Exception as exc:
            log.warning("search failed: catalogue unavailable", extra={"error": type(exc).__name__})
            raise Unavailable("the catalogue is unavailable; try again later") from exc
        await self.record(actor, "federated-search", None, "success", cause, search_audit_detail(query, answer))
        log.info("federated search answered", extra={"actor": actor, "conditions": query.conditions,
                                                      "collections_reported": answer.reported_collections,
                                                      "suppressed_cells": answer.suppressed_cells})
        return answer.body

    # -- Tier 1 ----------------------------------------------------------------------------------------------

    async def catalogue(self, actor: str, fmt: str) -> Graph:
        """The dcat:Catalog with every collection's newest description and the published Tier 3 datasets."""
        try:
            graph = dcat.new_graph()
            datasets, modified = [], None
            for collection in self.config.collections:
                latest = await self.versions.latest(collection.id)
                if latest is None:
                    continue
                graph.parse(data=latest["turtle"], format="turtle")
                datasets.append(URIRef(dcat.dataset_iri(self.config, collection.id)))
                modified = max(modified or latest["created_at"], latest["created_at"])
            datasets += await self._published_tier3(graph)
            dcat.add_catalog(graph, self.config, datasets, modified)
        except Exception as exc:
            log.warning("catalogue read failed", extra={"error": type(exc).__name__})
            raise Unavailable("the catalogue is unavailable; try again later") from exc
        await self.record(actor, "catalogue-read", "catalogue", "success", f"read:{uuid.uuid4()}",
                          {"format": fmt, "datasets": len(datasets)})
        return graph

    def describes(self, collection_id: str) -> bool:
        return any(c.id == collection_id for c in self.config.collections)

    async def collection(self, actor: str, collection_id: str, version: int | None, *, harvester: bool,
                         fmt: str) -> Graph:
        """One collection's description: the newest, or ``version`` (an earlier one only for ``harvester``)."""
        if not self.describes(collection_id):
            raise NotFound(f"collection {collection_id!r} is not described by this node")
        try:
            doc = await self.versions.latest(collection_id)
            if version is not None and (doc is None or doc["version"] != version):
                # Earlier versions may hold what the current coarsening no longer publishes: harvesters only.
                if not harvester:
                    raise HarvesterOnly("earlier versions are served to authenticated harvesters only "
                                        "('Authorization: Secret <token>'); the current version is public")
                doc = await self.versions.get(collection_id, version)
            if doc is None:
                raise NotFound(f"collection {collection_id!r} has no published version"
                               + (f" {version}" if version is not None else " yet"))
            graph = dcat.new_graph()
            graph.parse(data=doc["turtle"], format="turtle")
        except FederationError:
            raise
        except Exception as exc:
            log.warning("dataset read failed", extra={"error": type(exc).__name__})
            raise Unavailable("the catalogue is unavailable; try again later") from exc
        await self.record(actor, "catalogue-read", collection_id, "success", f"read:{uuid.uuid4()}",
                          {"format": fmt, "version": doc["version"]})
        return graph

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

    # -- Tier 3 datasets (read-only, the dataset-service's REST shape) ----------------------------------------

    def _dataset_store(self) -> DatasetStore:
        if self.datasets is None:
            raise NotFound("datasets are not served by this node")
        return self.datasets

    async def dataset_list(self, actor: str) -> dict[str, Any]:
        """``{"total", "list"}``: every released (not draft, not deleted) dataset version."""
        store = self._dataset_store()
        try:
            found = [d for d in await store.list() if not d.deleted and d.state is not State.DRAFT]
        except Exception as exc:
            log.warning("dataset list failed", extra={"error": type(exc).__name__})
            raise Unavailable("the datasets are unavailable; try again later") from exc
        await self.record(actor, "dataset-read", None, "success", f"read:{uuid.uuid4()}", {"datasets": len(found)})
        return {"total": len(found), "list": [dataset_summary(d) for d in found]}

    async def dataset_detail(self, actor: str, dataset_id: str) -> dict[str, Any]:
        """One released dataset version; a miss is recorded too (outcome ``failure``), then :class:`NotFound`."""
        store = self._dataset_store()
        try:
            dataset = await store.get(dataset_id)
        except Exception as exc:
            log.warning("dataset read failed", extra={"error": type(exc).__name__})
            raise Unavailable("the datasets are unavailable; try again later") from exc
        visible = dataset is not None and not dataset.deleted and dataset.state is not State.DRAFT
        await self.record(actor, "dataset-read", dataset_id, "success" if visible else "failure",
                          f"read:{uuid.uuid4()}", {"found": visible})
        if not visible:
            raise NotFound(f"no released dataset {dataset_id}")
        return dataset_detail(dataset)
