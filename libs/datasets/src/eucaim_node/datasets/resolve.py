"""Resolve a dataset's definition into its frozen study list, once, at definition time.

A federated-search query (the same AST ``/federation/search`` accepts) or an explicit list of research
StudyInstanceUIDs becomes a tuple of :class:`StudyRef` (study, subject, collection, every catalogued series) read
from the catalogue. Only studies in collections the node publishes are eligible, as for the search.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.catalogue.documents import STUDY
from eucaim_node.catalogue.reader import MongoCatalogueReader

from .model import StudyRef


class ResolutionError(ValueError):
    """The definition cannot make a dataset (no study, or studies the catalogue does not hold); one line."""


async def _refs(db: AsyncDatabase, mongo_filter: dict[str, Any]) -> list[StudyRef]:
    catalogue = MongoCatalogueReader(db)
    studies = await catalogue.study_rows(mongo_filter, (STUDY.subject_key, STUDY.collection_id))
    series = await catalogue.series_keys_of(s[STUDY.key] for s in studies)
    refs = [StudyRef(study_uid=s[STUDY.key], subject=s[STUDY.subject_key], collection_id=s[STUDY.collection_id],
                     series=tuple(series[s[STUDY.key]])) for s in studies if series.get(s[STUDY.key])]
    return sorted(refs, key=lambda r: (r.subject, r.study_uid))


async def resolve_query(db: AsyncDatabase, query_filter: dict[str, Any], collections: Iterable[str]) -> list[StudyRef]:
    """Studies matching a compiled search filter (``CompiledQuery.filter``) in the published ``collections``."""
    scope: dict[str, Any] = {STUDY.collection_id: {"$in": sorted(collections)}}
    refs = await _refs(db, {"$and": [scope, query_filter]} if query_filter else scope)
    if not refs:
        raise ResolutionError("the query matches no catalogued study: a dataset needs at least one")
    return refs


async def resolve_studies(db: AsyncDatabase, study_uids: list[str], collections: Iterable[str]) -> list[StudyRef]:
    """The listed studies; every one must be catalogued in a published collection."""
    wanted = list(dict.fromkeys(u.strip() for u in study_uids if u.strip()))
    if not wanted:
        raise ResolutionError("the study list is empty: a dataset needs at least one study")
    refs = await _refs(db, {STUDY.key: {"$in": wanted}, STUDY.collection_id: {"$in": sorted(collections)}})
    missing = sorted(set(wanted) - {r.study_uid for r in refs})
    if missing:
        raise ResolutionError(f"{len(missing)} of {len(wanted)} studies are not in the catalogue (first: {missing[0]})")
    return refs
