"""Tier 1: each collection as a versioned HealthDCAT-AP dataset, queued for the remote catalogue.

A new version is made only when the dataset's *content* changes (:func:`content_hash`): a config
edit, or published counts/facets that moved. Published numbers are coarsened first (counts below the
search's ``min_count`` or the granularity are left out, others rounded down to ``granularity``; typical
ages from the 5th–95th percentile but never beyond the ``min_count``-th youngest/oldest, widened to
5 years; facet values held by fewer than ``min_count`` subjects left out), so not every new study
makes a version and no small cell or single patient shows in the public metadata.

Versions are immutable documents; the newest is the dataset's current description, public; every
earlier one stays resolvable (``?version=N``) for authenticated harvesters. The version document also carries its delivery
state: it *is* the outbox entry (one document, so creating a version and queueing it is atomic).
Two consumers may try to publish the same collection at once: version numbers are unique ``_id``
values (the second insert fails and re-reads), and a computation whose aggregates watermark is
older than the newest version's never publishes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.coding import CodingTables
from eucaim_node.catalogue.config import CollectionsConfig
from eucaim_node.catalogue.quality import Measure, measures
from eucaim_node.catalogue.screening import CANCER_CONDITIONS, PROGRAMME_LABELS
from eucaim_node.catalogue.shacl import validate
from eucaim_node.events import CollectionPublished, Event

log = logging.getLogger("eucaim_node.catalogue_sync")
PRODUCER = "catalogue-sync"
EPOCH = datetime.fromtimestamp(0, UTC)


class VersionStore(Protocol):
    async def latest(self, collection_id: str) -> dict[str, Any] | None: ...
    async def insert(self, doc: dict[str, Any]) -> bool:
        """Insert unless the ``_id`` exists; True when inserted."""
    async def first(self, collection_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Coarsening:
    """How the public description coarsens numbers: the search's minimum count applies to every one of them."""

    granularity: int = 10
    min_count: int = 10

    def count(self, n: int) -> int | None:
        """``n`` rounded down to the granularity; None (not published) below the minimum count or the granularity,
        so a published count is never a small cell and never a rounded-down zero (decision 0071)."""
        if n < max(self.min_count, self.granularity):
            return None
        return (n // self.granularity) * self.granularity


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def collection_facts(aggregates: dict[str, Any], coarse: Coarsening, tables: CodingTables | None = None) -> dcat.CollectionFacts:
    """What the public description may say about a collection (pure)."""
    tables = tables or CodingTables.bundled()

    def facets(key: str, field: str) -> tuple[dcat.CodedFacet, ...]:
        return tuple(dcat.CodedFacet(code, tables.display(field, code))
                     for code, n in sorted((aggregates.get(key) or {}).items()) if n >= coarse.min_count)

    ages = aggregates.get("subject_ages") or []
    low = high = None
    k = coarse.min_count
    if len(ages) >= k:
        # As the search's age range: never beyond the k-th youngest or k-th oldest subject, so no extreme age shows.
        low = int(math.floor(max(percentile(ages, 0.05), ages[k - 1]) / 5) * 5)
        high = int(math.ceil(min(percentile(ages, 0.95), ages[-k]) / 5) * 5)
        low, high = min(low, high), max(low, high)
    subjects = coarse.count(int(aggregates.get("subjects", 0)))
    # The cell is the subjects, as in the search (results.py): too few of them and no count is published at all.
    studies = coarse.count(int(aggregates.get("studies", 0))) if subjects is not None else None
    def held(key: str, skip: str) -> list[str]:
        return [v for v, n in sorted((aggregates.get(key) or {}).items()) if n >= coarse.min_count and v != skip]

    return dcat.CollectionFacts(
        collection_methods=tuple(dcat.CodedFacet(p, PROGRAMME_LABELS[p]) for p in held("programme_counts", "unknown")
                                 if p in PROGRAMME_LABELS),
        conditions=tuple(dcat.CodedFacet(CANCER_CONDITIONS[c].code, CANCER_CONDITIONS[c].label)
                         for c in held("cancer_type_counts", "other") if c in CANCER_CONDITIONS),
        studies=studies, subjects=subjects,
        min_typical_age=low, max_typical_age=high,
        sexes=facets("sex_counts", "sex"), modalities=facets("modality_counts", "modality"),
        body_parts=facets("body_part_counts", "body_part"), manufacturers=facets("manufacturer_counts", "manufacturer"),
        quality=measures(aggregates.get("quality")),
    )


def version_notes(previous: dict[str, Any] | None, facts: dcat.CollectionFacts, config_changed: bool) -> str:
    if previous is None:
        return "First publication of this collection by the node."
    changed = []
    old = previous.get("facts", {})
    for name, label in (("studies", "number of studies"), ("subjects", "number of subjects"),
                        ("min_typical_age", "typical ages"), ("sexes", "sexes"), ("modalities", "modalities"),
                        ("body_parts", "body parts"), ("manufacturers", "manufacturers"), ("quality", "data quality"),
                        ("collection_methods", "collection methods"), ("conditions", "conditions")):
        if old.get(name) != _plain(getattr(facts, name)):
            changed.append(label)
    if config_changed or not changed:
        changed.append("descriptive metadata")
    return "Updated: " + ", ".join(dict.fromkeys(changed)) + "."


def _plain(value: Any) -> Any:
    # Objects, not [code, label] pairs: FerretDB stores no nested arrays.
    if isinstance(value, tuple):
        return [{"code": f.code, "label": f.label} if isinstance(f, dcat.CodedFacet)
                else {"metric": f.metric, "value": f.value} if isinstance(f, Measure) else f for f in value]
    return value


def facts_document(facts: dcat.CollectionFacts) -> dict[str, Any]:
    return {name: _plain(getattr(facts, name)) for name in dcat.CollectionFacts.__dataclass_fields__}


class DatasetPublisher:
    def __init__(self, config: CollectionsConfig, versions: VersionStore, publish: Callable[[Event], Awaitable[None]],
                 *, coarse: Coarsening, push_configured: bool, tables: CodingTables | None = None) -> None:
        self._config = config
        self._versions = versions
        self._publish = publish
        self._coarse = coarse
        self._push_configured = push_configured
        self._tables = tables or CodingTables.bundled()

    async def publish_if_changed(self, collection_id: str, aggregates: dict[str, Any], watermark: datetime | None,
                                 *, cause: Event | str) -> dict[str, Any] | None:
        """Publish a new version if the content changed; return it (None when nothing changed)."""
        if self._config.collection(collection_id) is None:
            log.warning("collection not in the collections file: not published", extra={"collection_id": collection_id})
            return None
        collection = self._config.resolved(collection_id)
        facts = collection_facts(aggregates, self._coarse, self._tables)
        digest = dcat.content_hash(self._config, collection, facts)
        stamp = watermark or EPOCH
        while True:
            latest = await self._versions.latest(collection_id)
            if latest is not None:
                if latest["content_hash"] == digest:
                    return None
                if stamp < latest["watermark"]:
                    log.info("newer version already published", extra={"collection_id": collection_id})
                    return None
            number = 1 if latest is None else latest["version"] + 1
            now = datetime.now(UTC)
            first = await self._versions.first(collection_id)
            info = dcat.VersionInfo(number=number, modified=now, issued=first["created_at"] if first else now,
                                    notes=version_notes(latest, facts, latest is not None and
                                                        latest.get("facts") == facts_document(facts)),
                                    previous=latest["version"] if latest else None)
            graph = dcat.new_graph()
            dcat.add_dataset(graph, self._config, collection, facts, info)
            report = validate(graph)
            doc = {
                "_id": f"{collection_id}@{number:06d}", "collection_id": collection_id, "version": number,
                "version_label": info.label, "content_hash": digest, "watermark": stamp, "created_at": now,
                "notes": info.notes, "facts": facts_document(facts), "turtle": dcat.serialise(graph, "ttl"),
                "shacl": {"conforms": report.conforms, "violations": len(report.violations),
                          "warnings": len(report.warnings),
                          "messages": [f"{v.focus} {v.path}: {v.message}"[:300] for v in report.violations[:20]]},
                "delivery": {
                    "status": ("pending" if report.conforms else "invalid") if self._push_configured else "not-configured",
                    "attempts": 0, "claims": 0, "next_attempt_at": now, "lease_until": EPOCH, "last_error": None,
                },
            }
            if not await self._versions.insert(doc):
                continue  # another consumer published this number first: look again
            if not report.conforms:
                log.error("dataset description does not conform to HealthDCAT-AP; not pushed",
                          extra={"collection_id": collection_id, "version": number, "violations": len(report.violations)})
            await self._publish(CollectionPublished.create(
                cause=(collection_id, number, digest), caused_by=cause if isinstance(cause, Event) else None,
                producer=PRODUCER, collection_id=collection_id, version=number, content_hash=digest, shacl_conforms=report.conforms,
                shacl_violations=len(report.violations)))
            log.info("dataset version published", extra={"collection_id": collection_id, "version": number,
                                                          "shacl_conforms": report.conforms})
            return doc
