"""Aggregates, coarsened public facts, dataset versions and the outbox, with in-process stand-ins."""

from datetime import UTC, datetime, timedelta

import httpx

from eucaim_node.catalogue.config import bundled_config_path, load_config
from eucaim_node.catalogue.documents import StudyDocument
from eucaim_node.catalogue_sync.adapters.collection_store import aggregate
from eucaim_node.catalogue_sync.adapters.remote_catalogue import HttpRemoteCatalogue
from eucaim_node.catalogue_sync.core.outbox import OutboxWorker
from eucaim_node.catalogue_sync.core.publication import Coarsening, DatasetPublisher, collection_facts

CONFIG = load_config(bundled_config_path("collections.example.yaml"))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def studies(n, *, per_subject=1, sex="SNOMEDCT248152002", age=50.0, prefix="S"):
    return [StudyDocument.from_document({
             "_id": f"2.25.{prefix}{i}", "collection_id": "c",
             "subject_key": f"{prefix}{i // per_subject}", "sex_code": sex, "age_years": age + i, "modalities": ["CT"],
             "modality_codes": ["RID10321"], "body_parts": ["CHEST"], "body_part_codes": ["SNOMEDCT43799004"],
             "manufacturers": ["SIEMENS"], "manufacturer_codes": ["birnlex_3066"], "series_count": 2,
             "instance_count": 10}) for i in range(n)]


def test_aggregates_count_subjects_per_facet_value():
    result = aggregate(studies(6, per_subject=2) + studies(1, sex="SNOMEDCT248153007", age=90.0, prefix="M"))
    assert (result["studies"], result["subjects"], result["series"], result["instances"]) == (7, 4, 14, 70)
    assert result["sex_counts"] == {"SNOMEDCT248152002": 3, "SNOMEDCT248153007": 1}
    assert result["subject_ages"] == [50.0, 52.0, 54.0, 90.0] and result["age_range"] == [50.0, 90.0]
    assert result["modality_counts"] == {"RID10321": 4} and result["modalities"] == ["CT"]


def test_public_facts_are_coarsened():
    facts = collection_facts(aggregate(studies(37) + studies(1, sex="SNOMEDCT248153007", age=99, prefix="M")),
                             Coarsening(granularity=10, min_count=5))
    assert (facts.studies, facts.subjects) == (30, 30)  # 38 rounded down
    assert [f.label for f in facts.sexes] == ["Female"]  # 1 man < 5: not published
    # 5th-95th percentile (51, 86), but never beyond the 5th youngest (54) or 5th oldest (83), widened; 99 hidden
    assert (facts.min_typical_age, facts.max_typical_age) == (50, 85)
    small = collection_facts(aggregate(studies(3)), Coarsening(granularity=10, min_count=5))
    assert (small.studies, small.subjects, small.min_typical_age, small.sexes) == (None, None, None, ())


def test_no_published_count_is_below_the_minimum_count_or_the_granularity():
    """The search suppresses cells under min_count; the public catalogue must not publish them either."""
    for granularity, min_count in ((1, 3), (10, 10), (10, 5), (5, 20)):
        coarse = Coarsening(granularity=granularity, min_count=min_count)
        for n in range(0, 60):
            facts = collection_facts(aggregate(studies(n)), coarse)
            for count in (facts.studies, facts.subjects):
                assert count is None or (count >= min_count and count % granularity == 0 and count <= n), (coarse, n)
            assert (facts.studies is None) == (n < max(granularity, min_count))


class Versions:
    def __init__(self):
        self.docs = {}
        self.steal_next = False

    async def latest(self, collection_id):
        mine = [d for d in self.docs.values() if d["collection_id"] == collection_id]
        return max(mine, key=lambda d: d["version"]) if mine else None

    async def first(self, collection_id):
        mine = [d for d in self.docs.values() if d["collection_id"] == collection_id]
        return min(mine, key=lambda d: d["version"]) if mine else None

    async def insert(self, doc):
        if self.steal_next:  # another consumer takes this version number first
            self.steal_next = False
            self.docs[doc["_id"]] = {**doc, "content_hash": "0" * 64}
            return False
        if doc["_id"] in self.docs:
            return False
        self.docs[doc["_id"]] = doc
        return True

    # outbox side
    async def due(self, now):
        return sorted((d for d in self.docs.values() if d["delivery"]["status"] == "pending"
                       and d["delivery"]["next_attempt_at"] <= now), key=lambda d: d["version"])

    async def newer_than(self, collection_id, version):
        return any(d["collection_id"] == collection_id and d["version"] > version
                   and d["delivery"]["status"] in ("pending", "delivered") for d in self.docs.values())

    async def claim(self, doc_id, now, lease_until):
        doc = self.docs[doc_id]
        if doc["delivery"]["lease_until"] > now:
            return None
        doc["delivery"]["lease_until"] = lease_until
        return doc

    async def get(self, collection_id, version):
        return self.docs[f"{collection_id}@{version:06d}"]

    async def settle(self, doc_id, changes):
        self.docs[doc_id]["delivery"].update(changes)


class Events(list):
    async def __call__(self, event):
        self.append(event)


def publisher(versions, events, push=True):
    return DatasetPublisher(CONFIG, versions, events, coarse=Coarsening(granularity=1, min_count=2), push_configured=push)


async def test_a_version_only_when_the_description_changes():
    versions, events = Versions(), Events()
    pub = publisher(versions, events)
    first = await pub.publish_if_changed("lung-screening", aggregate(studies(4)), T0, cause="c")
    assert first["version"] == 1 and first["shacl"]["conforms"] and first["delivery"]["status"] == "pending"
    assert "dcat:version \"1.0.0\"" in first["turtle"]
    assert await pub.publish_if_changed("lung-screening", aggregate(studies(4)), T0 + timedelta(1), cause="c") is None
    second = await pub.publish_if_changed("lung-screening", aggregate(studies(5)), T0 + timedelta(2), cause="c")
    assert second["version"] == 2 and "number of studies" in second["notes"]
    assert "dcat:previousVersion" in second["turtle"] and "?version=1" in second["turtle"]
    assert [e.version for e in events] == [1, 2] and all(e.shacl_conforms for e in events)


async def test_a_stale_computation_never_publishes_and_a_lost_race_takes_the_next_number():
    versions, events = Versions(), Events()
    pub = publisher(versions, events)
    await pub.publish_if_changed("lung-screening", aggregate(studies(4)), T0 + timedelta(5), cause="c")
    assert await pub.publish_if_changed("lung-screening", aggregate(studies(3)), T0, cause="c") is None
    versions.steal_next = True
    won = await pub.publish_if_changed("lung-screening", aggregate(studies(6)), T0 + timedelta(6), cause="c")
    assert won["version"] == 3


async def test_unknown_collections_and_unconfigured_push():
    versions, events = Versions(), Events()
    assert await publisher(versions, events).publish_if_changed("nope", aggregate(studies(2)), T0, cause="c") is None
    doc = await publisher(versions, events, push=False).publish_if_changed("default", aggregate(studies(2)), T0, cause="c")
    assert doc["delivery"]["status"] == "not-configured"


async def test_the_outbox_retries_with_backoff_then_delivers_only_the_newest():
    versions, events = Versions(), Events()
    pub = publisher(versions, events)
    await pub.publish_if_changed("lung-screening", aggregate(studies(4)), T0, cause="c")
    answers = iter([503, 204])
    seen = []

    def handler(request):
        seen.append((request.url.path, request.headers["x-eucaim-dataset-version"], request.headers["idempotency-key"]))
        return httpx.Response(next(answers))

    remote = HttpRemoteCatalogue("http://remote/datasets/{collection_id}", "t0k", 1,
                                 transport=httpx.MockTransport(handler))
    worker = OutboxWorker(versions, remote, events, backoff=0.01, backoff_max=0.05)
    try:
        assert await worker.deliver_due() == 0
        entry = versions.docs["lung-screening@000001"]["delivery"]
        assert (entry["status"], entry["attempts"], entry["last_error"]) == ("pending", 1, "HTTP 503")
        assert entry["next_attempt_at"] > datetime.now(UTC) - timedelta(seconds=1)
        await pub.publish_if_changed("lung-screening", aggregate(studies(5)), T0 + timedelta(1), cause="c")
        entry["next_attempt_at"] = T0  # due again
        assert await worker.deliver_due() == 1
    finally:
        await remote.close()
    assert versions.docs["lung-screening@000001"]["delivery"]["status"] == "superseded"
    assert versions.docs["lung-screening@000002"]["delivery"]["status"] == "delivered"
    assert seen == [("/datasets/lung-screening", "1.0.0", "lung-screening@000001"),
                    ("/datasets/lung-screening", "1.1.0", "lung-screening@000002")]
    delivered = [e for e in events if e.event_type == "CollectionDelivered"]
    assert [(e.version, e.attempts, e.http_status) for e in delivered] == [(2, 1, 204)]


async def test_an_unreachable_remote_is_retried_not_lost():
    versions, events = Versions(), Events()
    await publisher(versions, events).publish_if_changed("default", aggregate(studies(2)), T0, cause="c")

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    remote = HttpRemoteCatalogue("http://remote/{collection_id}", None, 1, transport=httpx.MockTransport(refuse))
    worker = OutboxWorker(versions, remote, events, backoff=0.01, backoff_max=0.05)
    for _ in range(3):
        versions.docs["default@000001"]["delivery"]["next_attempt_at"] = T0
        await worker.deliver_due()
    await worker.stop()
    entry = versions.docs["default@000001"]["delivery"]
    assert (entry["status"], entry["attempts"], entry["last_error"]) == ("pending", 3, "ConnectError")
    assert 0.008 <= worker.delay(1) <= 0.012 and worker.delay(10) <= 0.06


def test_a_collection_of_too_few_subjects_publishes_no_count_however_many_studies_they_have():
    """The search leaves a collection out when its subjects are fewer than min_count, whatever its studies number;
    the public description must not publish the studies count of such a small cell either."""
    few = collection_facts(aggregate(studies(24, per_subject=8)), Coarsening(granularity=10, min_count=10))  # 3 subjects
    assert (few.studies, few.subjects) == (None, None)
    enough = collection_facts(aggregate(studies(24, per_subject=2)), Coarsening(granularity=10, min_count=10))  # 12
    assert (enough.studies, enough.subjects) == (20, 10)
