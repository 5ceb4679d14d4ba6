"""Federated search latency with N studies in the catalogue (a measurement, printed; never asserted).

Fills a *separate* database (default ``eucaim_bench``) of a running MongoDB or FerretDB with N
generated CDM study documents (random collections, sexes, ages, modalities, body parts,
manufacturers; about 2 studies per subject), then times the node's own search path
(``QueryCompiler`` + ``run_search``: the MongoDB query and the per-collection answer with
small-cell protection) for representative queries, and drops the database.

    uv run python scripts/federation/bench_search.py --studies 10000

Without ``--mongo-url`` (which then carries credentials and TLS options) it uses the local stack's FerretDB
as its admin (``make up`` / ``eucaim-node stack up``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from eucaim_node.catalogue.config import bundled_config_path, load_config
from eucaim_node.catalogue.results import Protection
from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.catalogue.store import run_search

MODALITIES = [("CT", "RID10321"), ("MR", "RID10312"), ("PT", "RID10337"), ("MG", "RID10357"), ("US", "RID10326")]
BODY_PARTS = [("CHEST", "SNOMEDCT43799004"), ("BREAST", "SNOMEDCT76752008"), ("PROSTATE", "SNOMEDCT41216001"),
              ("ABDOMEN", "SNOMEDCT818981001"), ("HEAD", "SNOMEDCT69536005")]
MANUFACTURERS = [("SIEMENS", "birnlex_3066"), ("GE MEDICAL SYSTEMS", "birnlex_12833"), ("PHILIPS", "birnlex_3065"),
                 ("AGFA", "SNOMEDCT261665006")]
SEXES = [("M", "SNOMEDCT248153007"), ("F", "SNOMEDCT248152002"), ("UNKNOWN", "SNOMEDCT261665006")]


def cond(key, ctype, value):
    return {"key": key, "type": ctype, "value": value}


QUERIES = {
    "everything (empty OR)": {"operand": "OR", "children": []},
    "modality EQUALS CT": {"operand": "OR", "children": [{"operand": "AND", "children": [
        {"operand": "OR", "children": [cond("RID10311", "EQUALS", "RID10321")]}]}]},
    "explorer shape, 4 keys": {"operand": "OR", "children": [{"operand": "AND", "children": [
        {"operand": "OR", "children": [cond("SNOMEDCT263495000", "EQUALS", "SNOMEDCT248152002")]},
        {"operand": "OR", "children": [cond("RID10311", "EQUALS", "RID10357")]},
        {"operand": "OR", "children": [cond("SNOMEDCT123037004", "EQUALS", "SNOMEDCT76752008")]},
        {"operand": "OR", "children": [cond("C25392", "EQUALS", "birnlex_3066")]}]}]},
    "age BETWEEN 50..70 AND NOT_EQUALS modality": {"operand": "AND", "children": [
        cond("SNOMEDCT423493009", "BETWEEN", {"min": 50, "max": 70}), cond("RID10311", "NOT_EQUALS", "RID10321")]},
    "manufacturer CONTAINS, nested OR": {"operand": "OR", "children": [
        cond("C25392", "CONTAINS", "siem"),
        {"operand": "AND", "children": [cond("SNOMEDCT439401001", "EQUALS", "SNOMEDCT399068003"),
                                        cond("SNOMEDCT423493009", "GREATER_THAN", 65)]}]},
}


def study(i: int, collections: list[str], rng: random.Random) -> dict:
    modalities = rng.sample(MODALITIES, rng.choice([1, 1, 2]))
    body_part = rng.choice(BODY_PARTS)
    manufacturer = rng.choice(MANUFACTURERS)
    sex = rng.choice(SEXES)
    return {
        "_id": f"2.25.{10**20 + i}", "cdm": "eucaim-cdm-imaging/1", "subject_key": f"EUCAIM-BENCH-{i // 2:020x}",
        "collection_id": rng.choice(collections), "condition_code": "SNOMEDCT399068003", "condition_label": "Prostate cancer",
        "study_date": "20200101", "sex": sex[0], "sex_code": sex[1], "age_years": float(rng.randint(25, 90)),
        "modalities": sorted(m for m, _ in modalities), "modality_codes": sorted(c for _, c in modalities),
        "body_parts": [body_part[0]], "body_part_codes": [body_part[1]], "body_region_codes": [body_part[1]],
        "manufacturers": [manufacturer[0]], "manufacturer_codes": [manufacturer[1]], "contrast": False,
        "series_count": len(modalities), "instance_count": 100, "indexed_at": datetime.now(UTC), "source_event_id": "bench",
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mongo-url")
    parser.add_argument("--database", default="eucaim_bench")
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    where = args.mongo_url.split("@")[-1] if args.mongo_url else "the local stack's FerretDB"
    if args.mongo_url:  # carries its own credentials and TLS options
        client = AsyncMongoClient(args.mongo_url, tz_aware=True)
    else:
        from eucaim_node.stack import Stack, StackSettings

        client = Stack(StackSettings()).mongo_client(asynchronous=True, tz_aware=True)
    db = client[args.database]
    config = load_config(bundled_config_path("collections.example.yaml"))
    collections = [c.id for c in config.collections]
    studies = db["catalogue_studies"]
    try:
        await studies.drop()
        rng = random.Random(4)
        started = time.perf_counter()
        for start in range(0, args.studies, 1000):
            await studies.insert_many([study(i, collections, rng) for i in range(start, min(start + 1000, args.studies))])
        await studies.create_index("collection_id")
        await studies.create_index("subject_key")
        print(f"{args.studies} studies inserted in {time.perf_counter() - started:.1f} s into {where} / {args.database}")
        compiler = QueryCompiler()
        protection = Protection("perturb", 10, 10, 0.28, b"bench-secret")
        print(f"{'query':48} {'matched':>8} {'median ms':>10} {'max ms':>8}")
        for name, ast in QUERIES.items():
            query = compiler.compile(ast)
            timings = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                await run_search(db, query, config, protection)
                timings.append((time.perf_counter() - t) * 1000)
            matched = await studies.count_documents(query.filter or {})
            print(f"{name:48} {matched:>8} {statistics.median(timings):>10.0f} {max(timings):>8.0f}")
    finally:
        if not args.keep:
            await client.drop_database(args.database)
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
