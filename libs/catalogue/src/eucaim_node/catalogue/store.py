"""The federation's reads of the catalogue in MongoDB (AsyncMongoClient), shared by catalogue-sync and the CLI.

Collection names the federation adds to ``eucaim_node.store.collections`` (one writer each):
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.store import collections as names

from .config import CollectionsConfig
from .results import Protection, SearchAnswer, build_answer
from .search import CompiledQuery

#: metadata: one document per pseudonymous subject (CDM subject), recomputed from its studies.
CATALOGUE_SUBJECTS = "catalogue_subjects"
#: metadata: studies removed from the catalogue (consent withdrawal), with when: the aggregates' watermark.
CATALOGUE_REMOVED_STUDIES = "catalogue_removed_studies"
#: metadata: subjects who withdrew (pseudonymous keys): their studies are never catalogued again.
CATALOGUE_WITHDRAWN_SUBJECTS = "catalogue_withdrawn_subjects"
#: catalogue-sync: every published version of every dataset description, and its delivery state (the outbox).
CATALOGUE_DATASET_VERSIONS = "catalogue_dataset_versions"
#: catalogue-sync: node secrets of the search (the noise key), created once.
CATALOGUE_SEARCH_STATE = "catalogue_search_state"

SEARCH_PROJECTION = {"collection_id": 1, "subject_key": 1, "sex": 1, "age_years": 1, "modalities": 1, "body_parts": 1}


async def noise_secret(db: AsyncDatabase) -> bytes:
    """The node's secret for deterministic noise: created once (first writer wins), then read."""
    state = db[CATALOGUE_SEARCH_STATE]
    try:
        await state.insert_one({"_id": "noise-key", "key": secrets.token_hex(32)})
    except DuplicateKeyError:
        pass
    doc = await state.find_one({"_id": "noise-key"})
    return bytes.fromhex(doc["key"])


def published_collections(config: CollectionsConfig) -> dict[str, tuple[str, str]]:
    return {c.id: (c.title, c.description) for c in config.collections}


async def run_search(db: AsyncDatabase, query: CompiledQuery, config: CollectionsConfig,
                     protection: Protection) -> SearchAnswer:
    published = published_collections(config)
    mongo_filter: dict[str, Any] = {"collection_id": {"$in": sorted(published)}}
    if query.filter:
        mongo_filter = {"$and": [mongo_filter, query.filter]}
    studies = await db[names.CATALOGUE_STUDIES].find(mongo_filter, SEARCH_PROJECTION).to_list(None)
    return build_answer(studies, published, protection, query.canonical)


def search_audit_detail(query: CompiledQuery, answer: SearchAnswer) -> dict[str, Any]:
    """What the audit records of an answered search: the query as sent and the hash of its canonical form (equal
    for equivalent queries), what was reported, how many cells were suppressed; never a suppressed count."""
    return {"query_sha256": hashlib.sha256(query.canonical.encode()).hexdigest(), "query": query.text[:1000],
            "conditions": query.conditions, "keys": ",".join(query.keys),
            "collections_reported": answer.reported_collections,
            "studies_reported": answer.body["total"]["studies_count"],
            "subjects_reported": answer.body["total"]["subjects_count"], "suppressed_cells": answer.suppressed_cells}
