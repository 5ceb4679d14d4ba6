"""The federated search answered from study rows held in memory, and what its audit record keeps (pure).

catalogue-sync's search reads the rows through its index (``SearchIndex``, decision 0092); the operator's CLI
reads them from MongoDB (``store.run_search``). Both answer with :func:`answer_from_rows`' filter semantics
(``matching``) and :func:`results.build_answer`'s protection.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .config import CollectionsConfig
from .documents import STUDY
from .matching import compile_filter
from .results import Protection, SearchAnswer, build_answer
from .search import CompiledQuery


def published_collections(config: CollectionsConfig) -> dict[str, tuple[str, str]]:
    return {c.id: (c.title, c.description) for c in config.collections}


def answer_from_rows(rows: list[dict[str, Any]], query: CompiledQuery, config: CollectionsConfig,
                     protection: Protection) -> SearchAnswer:
    """``store.run_search`` over study rows held in memory (the same filter, evaluated with MongoDB's semantics)."""
    published = published_collections(config)
    match = compile_filter(query.filter)
    collection_f = STUDY.collection_id
    studies = [row for row in rows if row.get(collection_f) in published and match(row)]
    return build_answer(studies, published, protection, query.canonical)


def search_audit_detail(query: CompiledQuery, answer: SearchAnswer) -> dict[str, Any]:
    """What the audit records of an answered search: the query as sent and the hash of its canonical form (equal
    for equivalent queries), the keys this node could not answer (their conditions met no study), what was
    reported, how many cells were suppressed; never a suppressed count."""
    return {"query_sha256": hashlib.sha256(query.canonical.encode()).hexdigest(), "query": query.text[:1000],
            "conditions": query.conditions, "keys": ",".join(query.keys),
            "unanswered_keys": ",".join(query.unanswered),
            "collections_reported": answer.reported_collections,
            "studies_reported": answer.body["total"]["studies_count"],
            "subjects_reported": answer.body["total"]["subjects_count"], "suppressed_cells": answer.suppressed_cells}
