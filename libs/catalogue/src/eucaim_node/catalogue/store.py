"""The federated search over the catalogue in MongoDB (AsyncMongoClient), shared by catalogue-sync and the CLI.

Studies are read through the catalogue's reader (``reader.py``); the collections it touches are declared, with
their one writer, in ``eucaim_node.store.collections``.
"""

from __future__ import annotations

import secrets
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.store import collections as names

from .answering import published_collections
from .config import CollectionsConfig
from .documents import STUDY
from .reader import MongoCatalogueReader
from .results import Protection, SearchAnswer, build_answer
from .search import CompiledQuery, QueryCompiler

__all__ = ["ANSWER_FIELDS", "NoiseSecretOnce", "noise_secret", "run_search", "search_fields"]

#: The study fields a search answer shows (``results.build_answer``).
ANSWER_FIELDS = frozenset({STUDY.collection_id, STUDY.subject_key, STUDY.sex, STUDY.age_years, STUDY.modalities,
                           STUDY.body_parts})


def search_fields(compiler: QueryCompiler) -> frozenset[str]:
    """Every study field a search reads: what the answer shows and what any search key's condition tests; a key
    whose path is no field of the study document is a KeyError (a renamed field must not match nothing)."""
    paths = {p for spec in compiler.keys.values() for p in (spec.code_path, spec.raw_path, spec.numeric_path) if p}
    return STUDY.require(paths | ANSWER_FIELDS)


async def noise_secret(db: AsyncDatabase, *, create: bool = True) -> bytes:
    """The node's secret for deterministic noise: created once (first writer wins), then read.

    Only catalogue-sync creates it (``create=False`` for a reader such as the operator's CLI, whose MongoDB user
    may not write it): a missing secret is then a LookupError.
    """
    state = db[names.CATALOGUE_SEARCH_STATE]
    if create:
        try:
            await state.insert_one({"_id": "noise-key", "key": secrets.token_hex(32)})
        except DuplicateKeyError:
            pass
    doc = await state.find_one({"_id": "noise-key"})
    if doc is None:
        raise LookupError("the search's noise key does not exist yet: catalogue-sync creates it at its first search")
    return bytes.fromhex(doc["key"])


class NoiseSecretOnce:
    """:func:`noise_secret` read (and created if needed) at the first call, then kept: it never changes, and a
    search should not cost a write attempt and a read for it."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._db, self._secret = db, None

    async def __call__(self) -> bytes:
        if self._secret is None:
            self._secret = await noise_secret(self._db)
        return self._secret


async def run_search(db: AsyncDatabase, query: CompiledQuery, config: CollectionsConfig,
                     protection: Protection) -> SearchAnswer:
    published = published_collections(config)
    mongo_filter: dict[str, Any] = {STUDY.collection_id: {"$in": sorted(published)}}
    if query.filter:
        mongo_filter = {"$and": [mongo_filter, query.filter]}
    studies = await MongoCatalogueReader(db).study_rows(mongo_filter, ANSWER_FIELDS)
    return build_answer(studies, published, protection, query.canonical)
