"""`eucaim-node dlq list|replay` against the real stack: a poison message, fixed, replays to success.

The poison: a valid ``StudyIndexed`` for a collection whose catalogue holds a corrupt study document
(``series_count`` is not a number), so catalogue-sync cannot compute the collection's aggregates,
retries, and dead-letters the event. The operator repairs the document and replays the dead letter;
catalogue-sync then handles it like any other event. Every CLI use is in the audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from eucaim_node.events import CollectionUpdated, StudyIndexed, dead_letter_topic
from eucaim_node.store import collections
from eucaim_test_support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DLQ = dead_letter_topic("catalogue-sync")
OPERATOR = "pytest-operator"


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.kafka_env(), "EUCAIM_OPERATOR": OPERATOR}
    return subprocess.run([str(Path(sys.executable).with_name("eucaim-node")), "dlq", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def dead_lettered(stack) -> float:
    text = httpx.get(f"http://{stack.settings.host}:{stack.settings.health_port('catalogue_sync')}/metrics", timeout=30).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "eucaim_events_dead_lettered_total" and s.labels.get("topic") == StudyIndexed.TOPIC)


def listed(stack) -> list[dict]:
    result = cli(stack, "list", "catalogue-sync", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_a_fixed_poison_message_replays_to_success(stack, observer, kafka, unique_seed):
    await kafka.wait_until_idle()
    collection = f"dlq-{unique_seed}"
    subject = f"EUCAIM-TEST-{unique_seed}"
    corrupt = {"_id": f"2.25.{uuid.uuid4().int}", "collection_id": collection, "subject_key": subject,
               "series_count": "corrupt", "instance_count": 1, "modalities": ["CT"], "body_parts": ["CHEST"]}
    observer.db[collections.CATALOGUE_STUDIES].insert_one(corrupt)
    # As metadata writes it: catalogue-sync reads a subject's studies by the keys listed here (decision 0091).
    observer.db[collections.CATALOGUE_SUBJECTS].update_one({"_id": subject}, {"$addToSet": {"study_keys": corrupt["_id"]}},
                                                           upsert=True)
    event = StudyIndexed.create(cause=f"dlq-test:{unique_seed}", producer="test", study_key=corrupt["_id"],
                                collection_id=collection, subject_key=subject, series_count=1,
                                instance_count=1, modalities=("CT",), body_parts=("CHEST",))
    dead_before = dead_lettered(stack)
    producer = AIOKafkaProducer(**stack.kafka_client_options())
    await producer.start()
    try:
        await producer.send_and_wait(StudyIndexed.TOPIC, event.model_dump_json().encode(), key=event.partition_key(),
                                     headers=[("eucaim-event-type", b"StudyIndexed")])
    finally:
        await producer.stop()
    await kafka.wait_until_idle()

    # It failed every attempt and was dead-lettered; the operator sees it, pending, with the error.
    assert dead_lettered(stack) == dead_before + 1
    [letter] = [d for d in listed(stack) if d["event_id"] == str(event.event_id)]
    assert (letter["original_topic"], letter["attempts"], letter["replayed"]) == (StudyIndexed.TOPIC, 3, False)
    # The typed catalogue model names the corrupt field (decision 0110).
    assert letter["event_type"] == "StudyIndexed" and "ValidationError" in letter["error"]
    assert "series_count" in letter["error"]
    assert observer.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": collection}) is None
    pending = sum(not d["replayed"] for d in listed(stack))

    # Replaying before the fix would only fail again; fix the data, then replay.
    observer.db[collections.CATALOGUE_STUDIES].update_one({"_id": corrupt["_id"]}, {"$set": {"series_count": 1}})
    dry = cli(stack, "replay", DLQ, "--dry-run")
    assert dry.returncode == 0 and f"would replay {pending} dead letter(s)" in dry.stdout, dry.stdout + dry.stderr
    result = cli(stack, "replay", DLQ)
    assert result.returncode == 0, result.stderr
    assert f"replayed {pending} dead letter(s)" in result.stdout
    await kafka.wait_until_idle()

    stored = wait_for(lambda: observer.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": collection}),
                      what="the collection's aggregates")
    assert (stored["aggregates"]["studies"], stored["aggregates"]["series"]) == (1, 1)
    updates = [json.loads(v) for _, _, v in await kafka.read(CollectionUpdated.TOPIC)]
    assert [u for u in updates if u["collection_id"] == collection and u["causation_id"] == str(event.event_id)]
    assert dead_lettered(stack) == dead_before + 1  # it did not fail again
    assert [d["replayed"] for d in listed(stack) if d["event_id"] == str(event.event_id)] == [True]

    # A second replay finds nothing new: the dead letter is not republished twice.
    again = cli(stack, "replay", "catalogue-sync")
    assert again.returncode == 0 and "replayed 0 dead letter(s)" in again.stdout
    await kafka.wait_until_idle()
    copies = [h for _, h, v in await kafka.read(StudyIndexed.TOPIC) if json.loads(v)["event_id"] == str(event.event_id)]
    assert len(copies) == 2 and copies[1]["x-dlq-replayed-from"].startswith(f"{DLQ}:")
    assert not any(k.startswith("x-dlq-original") for k in copies[1])

    # Every use of the command is audited: who, what, which topic, how many; never a payload.
    def audited():
        return list(observer.db[collections.AUDIT_RECORDS].find(
            {"action": "AccessRecorded", "who": f"cli:{OPERATOR}", "entity": DLQ}))
    records = wait_for(lambda: len(audited()) >= 6 and audited(), what="the CLI's audit records")
    replays = [r for r in records if r["detail"]["action"] == "dlq-replay"]
    lists = [r for r in records if r["detail"]["action"] == "dlq-list"]
    assert len(lists) == 3 and len(replays) == 3
    assert sorted(r["detail"]["detail"]["replayed"] for r in replays) == [0, 0, pending]
    assert all(r["outcome"] == "success" for r in records)
    assert str(event.event_id) not in json.dumps([r["detail"] for r in records], default=str)


def test_an_unknown_topic_is_refused(stack):
    result = cli(stack, "list", "no-such-group")
    assert result.returncode == 2 and "eucaim.dlq.no-such-group.v1" in result.stderr
