"""Benchmark of the audit ledger: records appended per second and records verified per second.

Runs against a MongoDB-wire server (the local stack's FerretDB by default, or --mongo-url), in a
throwaway database that is dropped afterwards. It measures, in one run on this machine:

* append: ``LedgerStore.append`` one record at a time (one writer, as the audit consumer does:
  canonicalise, hash, one insert with its leaf index), excluding Kafka;
* sign: one tree head over all of them (rehashes every record, as the service's signer does);
* verify: ``eucaim-node audit verify``'s path (stream every record, rehash, recompute the tree,
  check the heads);
* the same hashing and tree work without the database, to show what the database costs.

Usage: uv run python scripts/audit/bench.py [--records 5000] [--mongo-url "mongodb://user:pw@host/?tls=true"]
Prints rates and ratios; never asserts anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pymongo import AsyncMongoClient

from eucaim_node.audit.core.records import KafkaPosition, audit_record
from eucaim_node.ledger import CompactTree, load_private_key, normalise, record_leaf_hash
from eucaim_node.ledger.store import LedgerStore
from eucaim_node.ledger.verify import verify_ledger


def mongo_client(url: str | None) -> AsyncMongoClient:
    """``url`` with its own credentials and TLS options, else the local stack's FerretDB as its admin."""
    if url:
        return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    from eucaim_node.stack import Stack, StackSettings

    return Stack(StackSettings()).mongo_client(asynchronous=True, tz_aware=True)


def sample_records(n: int) -> list[dict]:
    at = datetime.now(UTC)
    out = []
    for i in range(n):
        body = (f'{{"event_id":"{uuid.uuid4()}","event_type":"StudyIndexed","producer":"metadata",'
                f'"occurred_at":"2026-01-01T00:00:00Z","study_key":"2.25.{10**30 + i}","collection_id":"default",'
                f'"subject_key":"EUCAIM-LOCAL-{i:020d}","series_count":2,"instance_count":20,'
                f'"modalities":["CT"],"body_parts":["CHEST"],'
                f'"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}').encode()
        out.append(audit_record(body, {}, KafkaPosition("eucaim.study.indexed.v1", i % 3, i), at))
    return out


async def main(records: int, mongo_url: str | None) -> None:
    db_name = f"audit_bench_{uuid.uuid4().hex[:8]}"
    client = mongo_client(mongo_url)
    key = load_private_key(Path(tempfile.mkdtemp()) / "bench.pem", generate=True)
    data = sample_records(records)
    try:
        db = client[db_name]
        store = LedgerStore(db)
        await store.ensure_indexes()

        started = time.perf_counter()
        for record in data:
            await store.append(record)
        append_s = time.perf_counter() - started

        started = time.perf_counter()
        head = await store.sign_head(key, "bench/audit", datetime.now(UTC))
        sign_s = time.perf_counter() - started

        started = time.perf_counter()
        report = await verify_ledger(store, key.public_key(), "bench/audit")
        verify_s = time.perf_counter() - started
        assert report.ok and report.records == records and head["_id"] == records, report.findings[:3]

        # The same work without the database.
        stored = [d async for d in db["audit_records"].find({}, sort=[("leaf_index", 1)])]
        started = time.perf_counter()
        tree = CompactTree()
        for i, record in enumerate(data):
            tree.append(record_leaf_hash(normalise({**record, "leaf_index": i})))
        memory_append_s = time.perf_counter() - started
        started = time.perf_counter()
        tree = CompactTree()
        for document in stored:
            tree.append(record_leaf_hash(document))
        memory_verify_s = time.perf_counter() - started
        assert tree.root().hex() == head["root"]
    finally:
        await client.drop_database(db_name)
        await client.close()

    print(f"audit ledger benchmark: {records} records, MongoDB-wire server {(mongo_url or 'the local stack').split('@')[-1]}")
    print(f"  append (one writer, through LedgerStore.append): {records / append_s:10.0f} records/s")
    print(f"  sign one head over all of them:                  {records / sign_s:10.0f} records/s ({sign_s:.2f} s)")
    print(f"  verify (eucaim-node audit verify path):          {records / verify_s:10.0f} records/s")
    print(f"  hashing + tree only, no database:  append {records / memory_append_s:8.0f} records/s, "
          f"verify {records / memory_verify_s:8.0f} records/s")
    print(f"  share of the database: append {1 - memory_append_s / append_s:.0%}, verify {1 - memory_verify_s / verify_s:.0%} "
          f"of the time; verify is {append_s / verify_s:.1f}x faster than append")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--mongo-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.mongo_url or os.environ.get("EUCAIM_MONGO_URL")))
