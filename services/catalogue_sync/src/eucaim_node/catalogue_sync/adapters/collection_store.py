"""Collection aggregates computed from, and stored beside, the catalogue in MongoDB."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.catalogue.quality import collection_summary
from eucaim_node.store.collections import CATALOGUE_REMOVED_STUDIES
from eucaim_node.events import CollectionAggregates
from eucaim_node.store import collections

_FIELDS = {"subject_key": 1, "modalities": 1, "body_parts": 1, "manufacturers": 1, "modality_codes": 1,
           "body_part_codes": 1, "manufacturer_codes": 1, "sex_code": 1, "age_years": 1, "series_count": 1,
           "instance_count": 1, "indexed_at": 1, "quality": 1, "programme": 1, "cancer_type": 1}


def aggregate(studies: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the node keeps about a collection, from its study documents (pure).

    Facet counts are numbers of *subjects* having the value (what small-cell protection needs);
    ``subject_ages`` is each subject's youngest age, sorted (no keys); ``quality`` sums the studies' data quality.
    """
    subjects: dict[str, dict[str, Any]] = {}
    series = instances = 0
    for doc in studies:
        subject = subjects.setdefault(str(doc.get("subject_key")), defaultdict(set))
        subject["sex"].add(doc.get("sex_code"))
        subject["programme"].add(doc.get("programme") or "unknown")
        subject["cancer_type"].add(doc.get("cancer_type") or "other")
        for raw, code, name in (("modalities", "modality_codes", "modality"), ("body_parts", "body_part_codes", "body_part"),
                                ("manufacturers", "manufacturer_codes", "manufacturer")):
            subject[name].update(doc.get(code) or ())
            subject[name + "_raw"].update(doc.get(raw) or ())
        age = doc.get("age_years")
        if age is not None:
            subject["age"].add(age)
        series += int(doc.get("series_count", 0))
        instances += int(doc.get("instance_count", 0))

    def counts(name: str) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for subject in subjects.values():
            for value in subject[name]:
                if value is not None:
                    result[value] += 1
        return dict(sorted(result.items()))

    ages = sorted(min(s["age"]) for s in subjects.values() if s["age"])
    return {
        "subjects": len(subjects), "studies": len(studies), "series": series, "instances": instances,
        "modalities": sorted(counts("modality_raw")), "body_parts": sorted(counts("body_part_raw")),
        "manufacturers": sorted(counts("manufacturer_raw")),
        "age_range": [ages[0], ages[-1]] if ages else None,
        "sex_counts": counts("sex"), "modality_counts": counts("modality"), "body_part_counts": counts("body_part"),
        "manufacturer_counts": counts("manufacturer"), "subject_ages": ages,
        "quality": collection_summary(doc.get("quality") for doc in studies),
        "programme_counts": counts("programme"), "cancer_type_counts": counts("cancer_type"),
    }


class MongoCollectionStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._studies = db[collections.CATALOGUE_STUDIES]
        self._removed = db[CATALOGUE_REMOVED_STUDIES]
        self._collections = db[collections.CATALOGUE_COLLECTIONS]

    async def compute_aggregates(self, collection_id: str) -> tuple[dict[str, Any], datetime | None]:
        # Plain finds: portable between MongoDB and FerretDB, linear in the collection.
        studies = await self._studies.find({"collection_id": collection_id}, _FIELDS).to_list(None)
        stamps = [d["indexed_at"] for d in studies if d.get("indexed_at") is not None]
        # Removals count as changes too: a tombstone's time moves the watermark forward.
        async for tombstone in self._removed.find({"collection_id": collection_id}, {"removed_at": 1}):
            stamps.append(tombstone["removed_at"])
        return aggregate(studies), max(stamps) if stamps else None

    async def save_aggregates(self, collection_id: str, aggregates: dict[str, Any], watermark: datetime | None) -> bool:
        stamp = watermark or datetime.fromtimestamp(0, UTC)
        update = {"$set": {"aggregates": aggregates, "watermark": stamp, "updated_at": datetime.now(UTC)}}
        try:
            result = await self._collections.update_one(
                {"_id": collection_id, "watermark": {"$lte": stamp}}, update, upsert=True)
        except DuplicateKeyError:
            return False  # the document exists with a newer watermark: keep it
        return result.matched_count > 0 or result.upserted_id is not None

    async def stored(self, collection_id: str) -> dict[str, Any] | None:
        return await self._collections.find_one({"_id": collection_id})

    async def collection_ids(self) -> list[str]:
        return [d["_id"] async for d in self._collections.find({}, {"_id": 1})]


def summary(aggregates: dict[str, Any]) -> CollectionAggregates:
    return CollectionAggregates(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in aggregates.items()
                                   if k in CollectionAggregates.model_fields})
