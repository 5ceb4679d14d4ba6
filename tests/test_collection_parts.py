"""Collection aggregates kept in parts (decision 0091), against the real stack: after every kind of trouble
(a redelivered event, a writer that crashed between a part's content and its totals, a restart on a catalogue
without parts) the stored aggregates equal those recomputed from the whole catalogue."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaProducer

from eucaim_node.catalogue.documents import STUDY, StudyDocument
from eucaim_node.catalogue_sync.adapters.collection_store import PARTS_BUILT, aggregate, content_id, part_id
from eucaim_node.catalogue_sync.core.parts import part_of
from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.events import StudyIndexed
from eucaim_node.store import collections


def patient(seed: str) -> SamplePatient:
    digits = str(abs(hash(seed)) % 10**6).zfill(6)
    return SamplePatient(name=f"PARTS{digits}^BOB", patient_id=f"MRN-P{digits}", accession_number=f"ACC-P{digits}")


def stored_and_truth(db, collection_id: str) -> tuple[dict, dict]:
    stored = db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": collection_id})["aggregates"]
    truth = aggregate([StudyDocument.from_document(d)
                       for d in db[collections.CATALOGUE_STUDIES].find({STUDY.collection_id: collection_id})])
    return stored, truth


async def redeliver(stack, kafka, study_key: str) -> None:
    """Send the study's StudyIndexed again, as Kafka does after a consumer crash before its commit."""
    indexed = [v for _, _, v in await kafka.read(StudyIndexed.TOPIC) if json.loads(v)["study_key"] == study_key]
    producer = AIOKafkaProducer(**stack.kafka_client_options())
    await producer.start()
    try:
        await producer.send_and_wait(StudyIndexed.TOPIC, indexed[-1], key=study_key.encode())
    finally:
        await producer.stop()
    await kafka.wait_until_idle()


async def test_parts_stay_equal_to_the_catalogue_after_redelivery_a_crashed_commit_and_a_rebuild(
        stack, observer, kafka, tmp_path, unique_seed):
    sample = push_sample(stack, tmp_path / "a", patient=patient(unique_seed), seed=unique_seed)
    key = observer.study_key(sample.study_instance_uid)
    assert observer.wait_until_complete(key, 20, timeout=120).complete(20)
    # A second study of the same subject: one entry, two studies (subjects are counted once).
    second = push_sample(stack, tmp_path / "b", patient=patient(unique_seed), seed=unique_seed + "-2")
    key2 = observer.study_key(second.study_instance_uid)
    assert observer.wait_until_complete(key2, 20, timeout=120).complete(20)
    await kafka.wait_until_idle()
    db = observer.db
    study = db[collections.CATALOGUE_STUDIES].find_one({"_id": key})
    collection_id, subject = study["collection_id"], study["subject_key"]
    stored, truth = stored_and_truth(db, collection_id)
    assert stored == truth and truth["studies"] >= 2
    part = part_id(collection_id, part_of(subject))
    revision = db[collections.CATALOGUE_COLLECTION_PART_TOTALS].find_one({"_id": part})["revision"]
    entries = [e for e in db[collections.CATALOGUE_COLLECTION_PARTS].find_one(
        {"_id": content_id(part, revision)})["entries"] if e["subject"] == subject]
    assert [(e["studies"], e["instances"], sorted(r["_id"] for r in e["rows"])) for e in entries] == \
        [(2, 40, sorted([key, key2]))]

    # Redelivered: recomputed, not added again.
    await redeliver(stack, kafka, key)
    assert stored_and_truth(db, collection_id)[0] == truth

    # A writer that crashed after storing a part's next revision but before moving the totals to it (simulated:
    # the next revision stored by hand, computed from an older catalogue that lacked this subject): the next
    # delivery moves the totals forward, then recomputes the subject from the catalogue.
    part = part_id(collection_id, part_of(subject))
    head = db[collections.CATALOGUE_COLLECTION_PART_TOTALS].find_one({"_id": part})
    current = db[collections.CATALOGUE_COLLECTION_PARTS].find_one({"_id": content_id(part, head["revision"])})
    db[collections.CATALOGUE_COLLECTION_PARTS].insert_one({
        **current, "_id": content_id(part, head["revision"] + 1), "revision": head["revision"] + 1,
        "entries": [e for e in current["entries"] if e["subject"] != subject]})
    await redeliver(stack, kafka, key)
    assert db[collections.CATALOGUE_COLLECTION_PART_TOTALS].find_one({"_id": part})["revision"] == head["revision"] + 2
    assert stored_and_truth(db, collection_id)[0] == truth

    # A catalogue written before parts existed: catalogue-sync builds them all at start, from the catalogue.
    stack.stop("catalogue_sync")
    db[collections.CATALOGUE_COLLECTION_PARTS].delete_many({})
    db[collections.CATALOGUE_COLLECTION_PART_TOTALS].delete_many({})
    db[collections.CATALOGUE_SUBJECT_PLACES].delete_many({})
    db[collections.CATALOGUE_SEARCH_STATE].delete_one({"_id": PARTS_BUILT})
    stack.start("catalogue_sync")
    assert db[collections.CATALOGUE_SEARCH_STATE].find_one({"_id": PARTS_BUILT}) is not None
    await redeliver(stack, kafka, key2)
    assert stored_and_truth(db, collection_id)[0] == truth

    # After the rebuild the aggregates go on following the catalogue: a new subject's study is counted. (The
    # rebuilt parts' revisions start above the collection's stored version, which only grows; parts restarting at
    # revision 1 left the aggregates frozen at their pre-rebuild value.)
    third = push_sample(stack, tmp_path / "c", patient=patient(unique_seed + "-3"), seed=unique_seed + "-3")
    key3 = observer.study_key(third.study_instance_uid)
    assert observer.wait_until_complete(key3, 20, timeout=120).complete(20)
    await kafka.wait_until_idle()
    assert db[collections.CATALOGUE_STUDIES].find_one({"_id": key3})["collection_id"] == collection_id
    stored, after = stored_and_truth(db, collection_id)
    assert after["studies"] == truth["studies"] + 1 and after["subjects"] == truth["subjects"] + 1
    assert stored == after
