"""Hot paths at scale (part of scripts/bench/pipeline.py): studies generated straight into the catalogue.

- **collection update**: what catalogue-sync does for one StudyIndexed (recompute the subject's entry in its
  part, merge the parts' totals, save), against the full recomputation it replaced (every study of the
  collection read and aggregated);
- **federated search**: p50/p95 of authenticated searches over HTTP against the running catalogue-sync.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from eucaim_node.catalogue_sync.adapters.collection_store import MongoCollectionStore, aggregate
from eucaim_node.catalogue_sync.core.parts import PARTS
from eucaim_node.catalogue.documents import StudyDocument
from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.catalogue.store import search_fields
from eucaim_node.stack import Stack
from eucaim_node.store import collections

COLLECTION = "default"
QUERIES = [
    {"ast": {"operand": "AND", "children": [{"key": "SNOMEDCT263495000", "type": "EQUALS", "value": "SNOMEDCT248152002"}]}},
    {"ast": {"operand": "AND", "children": [{"key": "RID10311", "type": "EQUALS", "value": "RID10321"},
                                            {"key": "SNOMEDCT423493009", "type": "BETWEEN", "value": {"min": 40, "max": 70}}]}},
    {"ast": {"operand": "OR", "children": []}},
    {"ast": {"operand": "AND", "children": [{"key": "manufacturer", "type": "CONTAINS", "value": "acme"}]}},
]


def study_doc(n: int, rnd: random.Random) -> dict[str, Any]:
    modality = rnd.choice([("CT", "RID10321"), ("MR", "RID10312"), ("PT", "RID10337")])
    return {
        "_id": f"2.25.9{n:012d}", "collection_id": COLLECTION, "subject_key": f"BENCH-SUBJECT-{n // 2:06d}",
        "sex": rnd.choice(["F", "M"]), "sex_code": rnd.choice(["SNOMEDCT248152002", "SNOMEDCT248153007"]),
        "age_years": float(rnd.randint(20, 90)), "modalities": [modality[0]], "modality_codes": [modality[1]],
        "body_parts": ["CHEST"], "body_part_codes": ["SNOMEDCT51185008"], "manufacturers": ["ACME MEDICAL"],
        "manufacturer_codes": ["SNOMEDCT261665006"], "series_count": 2, "instance_count": 100,
        "indexed_at": datetime.now(UTC), "study_date": "20240101", "series_descriptions": ["AXIAL"],
    }


async def generate(db, count: int) -> list[dict[str, Any]]:
    rnd = random.Random(12)
    docs = [study_doc(n, rnd) for n in range(count)]
    for start in range(0, count, 1000):
        await db[collections.CATALOGUE_STUDIES].insert_many(docs[start:start + 1000])
    subjects: dict[str, list[str]] = {}
    for doc in docs:
        subjects.setdefault(doc["subject_key"], []).append(doc["_id"])
    rows = [{"_id": s, "study_keys": keys, "collection_ids": [COLLECTION], "study_count": len(keys), "revision": 1}
            for s, keys in subjects.items()]
    for start in range(0, len(rows), 1000):
        await db[collections.CATALOGUE_SUBJECTS].insert_many(rows[start:start + 1000])
    return docs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(stack: Stack, count: int) -> list[str]:
    client = stack.mongo_client(asynchronous=True, tz_aware=True)
    db = client[stack.settings.mongo_database]
    try:
        started = time.perf_counter()
        docs = await generate(db, count)
        generated = time.perf_counter() - started
        store = MongoCollectionStore(db, row_fields=search_fields(QueryCompiler()))
        # The parts of a catalogue written before them: what catalogue-sync builds once at its first start.
        started = time.perf_counter()
        await db[collections.CATALOGUE_SEARCH_STATE].delete_one({"_id": "collection-parts-built"})
        await store.build_parts_if_missing()
        built = time.perf_counter() - started

        full, update = [], []
        for n, doc in enumerate(random.Random(3).sample(docs, 20)):
            if n < 3:  # seconds each: three are enough
                started = time.perf_counter()
                studies = await db[collections.CATALOGUE_STUDIES].find({"collection_id": COLLECTION}).to_list(None)
                aggregate([StudyDocument.from_document(s) for s in studies])
                full.append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.update_subject(doc["subject_key"], COLLECTION)
            aggregates, watermark, version = await store.compute_aggregates(COLLECTION)
            await store.save_aggregates(COLLECTION, aggregates, watermark, version)
            update.append(time.perf_counter() - started)
        total = aggregates["studies"]
    finally:
        await client.close()
    return [
        f"| hot path ({total} studies in the collection, {count} generated in {generated:.1f} s) | median | p95 |",
        "|---|---:|---:|",
        f"| collection update: full recomputation (before) | {statistics.median(full) * 1000:.0f} ms | "
        f"{percentile(full, 0.95) * 1000:.0f} ms |",
        f"| collection update: one part + merge of {PARTS} totals (after) | {statistics.median(update) * 1000:.0f} ms | "
        f"{percentile(update, 0.95) * 1000:.0f} ms |",
        f"| parts built once from the catalogue (first start after the upgrade) | {built * 1000:.0f} ms | |",
    ]


def search_figures(stack: Stack, searches: int) -> list[str]:
    times = []
    headers = {"Authorization": f"Secret {stack.search_token()}"}
    with httpx.Client(timeout=60, headers=headers) as http:
        for n in range(searches):
            started = time.perf_counter()
            response = http.post(stack.search_url(), json={**QUERIES[n % len(QUERIES)], "id": str(n)})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return [
        f"| federated search over HTTP ({searches} queries, {len(QUERIES)} shapes) | "
        f"{statistics.median(times) * 1000:.0f} ms | {percentile(times, 0.95) * 1000:.0f} ms |",
    ]


def hot_path_figures(stack: Stack, count: int, searches: int) -> tuple[str, list[str]]:
    rows = asyncio.run(measure(stack, count))
    return f"Hot paths at {count} studies (generated into the store):", rows + search_figures(stack, searches)
