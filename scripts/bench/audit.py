"""Audit ledger at scale (issue 12): `audit verify` stays linear, `audit prove` reads O(log n) hashes.

Grows one throwaway ledger on a MongoDB-wire server (the local stack's FerretDB by default) to each size in
turn (1,000, 10,000, 100,000 records by default), the way the node does: records appended as consecutive
leaves through ``LedgerStore.append_batch`` (same canonical form, hashes and unique leaf index as the audit
consumer's ``append``), a head signed over all of them (which rehashes every new record), the subtree hashes
stored by ``TreeNodeIndex``. At each size it runs, through the same library calls as ``eucaim-node audit``:

* verify (``verify_ledger`` over ``MongoLedgerReader``): seconds per record, and the peak Python heap while it
  streams (tracemalloc);
* prove (``inclusion_proof_document`` over a ``CountingReader``): hashes read and calls of the port for 20
  records spread over the tree (before decision 0115 every proof read all n leaf hashes);
* the ratios of each figure to the smallest size's, next to the ratio of n and of log2 n.

Usage: uv run python scripts/bench/audit.py [--sizes 1000 10000 100000] [--mongo-url URL]   (make bench-audit)
Prints figures and ratios; asserts only that every proof and every verification succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pymongo import AsyncMongoClient

from eucaim_node.ledger import load_private_key
from eucaim_node.ledger.ports import CountingReader
from eucaim_node.ledger.proofs import check_proof, inclusion_proof_document
from eucaim_node.ledger.store import LedgerStore, MongoLedgerReader, TreeNodeIndex
from eucaim_node.ledger.verify import verify_ledger

ORIGIN = "bench/audit"
PROOFS = 20


def mongo_client(url: str | None) -> AsyncMongoClient:
    if url:
        return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    from eucaim_node.stack import Stack, StackSettings

    return Stack(StackSettings()).mongo_client(asynchronous=True, tz_aware=True)


def record(i: int, at: datetime) -> dict:
    """A record shaped like the audit service's (eucaim_node.audit.core.records), pseudonymous keys only."""
    return {"_id": f"bench-{i:09d}", "schema": 2, "action": "StudyIndexed", "recorded_at": at, "occurred_at": at,
            "what": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110103",
                     "display": "DICOM Instances Accessed", "action": "R"},
            "outcome": "success", "who": "metadata", "requestor": False,
            "entity": f"2.25.{10**30 + i}", "entities": {"study": f"2.25.{10**30 + i}", "collection": "default"},
            "event_id": str(uuid.UUID(int=i)), "detail": {"series_count": 2, "instance_count": 20},
            "source": {"topic": "eucaim.study.indexed.v1", "partition": i % 3, "offset": i}}


async def grow(store: LedgerStore, index: TreeNodeIndex, key, start: int, end: int) -> float:
    at = datetime.now(UTC)
    started = time.perf_counter()
    for first in range(start, end, 1000):
        await store.append_batch([record(i, at) for i in range(first, min(end, first + 1000))])
    await store.sign_head(key, ORIGIN, datetime.now(UTC))
    await index.extend(store.signed_leaves)
    return time.perf_counter() - started


async def measure(db, key, n: int) -> dict:
    reader = MongoLedgerReader(db)
    tracemalloc.start()
    started = time.perf_counter()
    report = await verify_ledger(reader, key.public_key(), ORIGIN)
    verify_s = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.ok and report.records == n, report.findings[:3]

    counted = CountingReader(reader)
    reads, trips, prove_s = [], [], 0.0
    for i in sorted(random.Random(n).sample(range(n), min(PROOFS, n))):
        counted.reset()
        started = time.perf_counter()
        proof = await inclusion_proof_document(counted, f"bench-{i:09d}", ORIGIN)
        prove_s += time.perf_counter() - started
        assert check_proof(proof, key.public_key(), ORIGIN) is None and proof["tree_size"] == n
        reads.append(counted.hashes_read)
        trips.append(counted.port_calls)
    return {"n": n, "verify_s": verify_s, "verify_peak_mb": peak / 2**20, "prove_reads_max": max(reads),
            "prove_reads_mean": sum(reads) / len(reads), "prove_trips_max": max(trips), "prove_ms": 1000 * prove_s / len(reads)}


async def main(sizes: list[int], client: AsyncMongoClient, server: str) -> None:
    db_name = f"audit_bench_{uuid.uuid4().hex[:8]}"
    key = load_private_key(Path(tempfile.mkdtemp()) / "bench.pem", generate=True)
    rows, grown = [], 0
    try:
        db = client[db_name]
        store, index = LedgerStore(db), TreeNodeIndex(db, key.public_key(), ORIGIN)
        await store.ensure_indexes()
        for n in sizes:
            grow_s = await grow(store, index, key, grown, n)
            grown = n
            rows.append({**await measure(db, key, n), "grow_s": grow_s})
    finally:
        await client.drop_database(db_name)
        await client.close()

    print(f"audit ledger at scale: {', '.join(f'{n:,}' for n in sizes)} records; MongoDB-wire server "
          f"{server}; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| records | append+sign+index (new records) | verify s | verify µs/record | verify peak heap MB "
          "| prove: hashes read (max / mean) | port calls | ms/proof | before 0115: hashes read |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['grow_s']:.1f} s | {r['verify_s']:.2f} | {1e6 * r['verify_s'] / r['n']:.0f} "
              f"| {r['verify_peak_mb']:.1f} | {r['prove_reads_max']} / {r['prove_reads_mean']:.1f} | {r['prove_trips_max']} "
              f"| {r['prove_ms']:.1f} | {r['n']:,} |")
    base = rows[0]
    print()
    print(f"ratios to {base['n']:,} records:")
    print("| records | n ratio | log2 n ratio | verify time ratio | verify time per record ratio | verify peak heap ratio "
          "| prove reads (max) ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows[1:]:
        print(f"| {r['n']:,} | {r['n'] / base['n']:.0f}× | {math.log2(r['n']) / math.log2(base['n']):.2f}× "
              f"| {r['verify_s'] / base['verify_s']:.1f}× "
              f"| {(r['verify_s'] / r['n']) / (base['verify_s'] / base['n']):.2f}× "
              f"| {r['verify_peak_mb'] / base['verify_peak_mb']:.2f}× | {r['prove_reads_max'] / base['prove_reads_max']:.2f}× |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--mongo-url", default=None)
    args = parser.parse_args()
    url = args.mongo_url or os.environ.get("EUCAIM_MONGO_URL")
    asyncio.run(main(sorted(args.sizes), mongo_client(url), (url or "the local stack's FerretDB").split("@")[-1]))
