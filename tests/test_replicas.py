"""Scale-out (decision 0093), against the real stack: with a second replica of anonymisation and of metadata in
their consumer groups, the topics' partitions are shared, every study is processed, and none twice (counting
every effect: research instances, catalogue documents, event IDs, audit records)."""

from __future__ import annotations

import time

from aiokafka.partitioner import DefaultPartitioner

from eucaim_node.cli.sample import SamplePatient, _uid
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.events import StudyAnonymised, StudyReceived
from eucaim_node.runtime import KafkaSettings
from eucaim_node.stack.manager import SCALABLE, replica_name
from eucaim_node.store import collections

INSTANCES = 5
#: Partitions of the topics the services create (the local stack keeps the default).
PARTITIONS = KafkaSettings.model_fields["kafka_topic_partitions"].default


def patient(seed: str) -> SamplePatient:
    digits = str(abs(hash(seed)) % 10**6).zfill(6)
    return SamplePatient(name=f"REPLICA{digits}^EVE", patient_id=f"MRN-R{digits}", accession_number=f"ACC-R{digits}")


def seeds_covering_every_partition(observer, base: str, partitions: int) -> list[str]:
    """Two studies per partition of the topics (keyed by study key), so that every consumer gets work."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(v) < 2 for v in chosen.values()):
        seed = f"{base}-{n}"
        key = observer.study_key(_uid(seed, "study")).encode()
        partition = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
        if len(chosen[partition]) < 2:
            chosen[partition].append(seed)
        n += 1
    return [seed for seeds in chosen.values() for seed in seeds]


def wait_assigned(stack, name: str, topic: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = stack.log_path(name).read_text(errors="replace") if stack.log_path(name).exists() else ""
        if any("assigned to partitions" in line and f"topic='{topic}'" in line for line in log.splitlines()):
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} was never assigned a partition of {topic}")


def processed_by(stack, name: str, keys: set[str], message: str) -> set[str]:
    log = stack.log_path(name).read_text(errors="replace")
    return {k for k in keys for line in log.splitlines() if message in line and k in line}


async def test_two_replicas_share_the_partitions_and_no_study_is_lost_or_done_twice(
        stack, observer, kafka, tmp_path, unique_seed):
    replicas = [replica_name(s, 2) for s in SCALABLE]
    for name in replicas:
        stack.start(name)
    try:
        wait_assigned(stack, "anonymisation-2", StudyReceived.TOPIC)
        wait_assigned(stack, "metadata-2", StudyAnonymised.TOPIC)
        await kafka.wait_until_idle()  # the group has settled: no rebalance left to redeliver anything

        seeds = seeds_covering_every_partition(observer, unique_seed, PARTITIONS)
        samples = [push_sample(stack, tmp_path / seed, patient=patient(seed), seed=seed, series=1,
                               instances_per_series=INSTANCES) for seed in seeds]
        keys = {observer.study_key(s.study_instance_uid) for s in samples}
        for key in keys:
            assert observer.wait_until_complete(key, INSTANCES, timeout=180).complete(INSTANCES), key
        await kafka.wait_until_idle()

        # Nothing lost, nothing twice: each study once in the research Orthanc and the catalogue, one event ID per
        # step, one audit record per event ID.
        events = [e for e in await kafka.domain_events() if e.get("study_key") in keys]
        for key in keys:
            assert observer.research_instance_count(key) == INSTANCES
            assert observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": key}) == 1
            for event_type in ("StudyReceived", "StudyAnonymised", "StudyIndexed"):
                ids = {e["event_id"] for e in events if e["study_key"] == key and e["event_type"] == event_type}
                assert len(ids) == 1, (key, event_type, ids)
        records = list(observer.db[collections.AUDIT_RECORDS].find({"entity": {"$in": sorted(keys)}}))
        assert sorted(r["_id"] for r in records) == sorted({e["event_id"] for e in events})

        # Both replicas of each service did part of the work (the partitions were shared).
        for service, message in (("anonymisation", "study anonymised"), ("metadata", "study indexed")):
            first = processed_by(stack, service, keys, message)
            second = processed_by(stack, replica_name(service, 2), keys, message)
            assert first and second, (service, len(first), len(second))
            assert first | second == keys
    finally:
        for name in replicas:
            stack.stop(name)
