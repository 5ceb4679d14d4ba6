"""The node end to end, against the real stack: storescu → clinical Orthanc → five services.

Every test sends its own synthetic patient (a fresh seed), so tests can share one stack.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pydicom
import pytest
from aiokafka import AIOKafkaProducer

from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.events import StudyReceived, dead_letter_topic
from eucaim_node.store import collections


pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def patient(seed: str) -> SamplePatient:
    digits = str(abs(hash(seed)) % 10**6).zfill(6)
    return SamplePatient(name=f"TESTPATIENT{digits}^ALICE", patient_id=f"MRN-{digits}", birth_date="19580203",
                         accession_number=f"ACC-{digits}")


def all_values(ds: pydicom.Dataset):
    """Every element value of a dataset, at any depth, as text (file meta included)."""
    for elem in [*getattr(ds, "file_meta", []), *ds]:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from all_values(item)
        elif elem.tag != 0x7FE00010:
            yield str(elem.value)


def research_files(observer, study_key: str) -> list[pydicom.Dataset]:
    study_id = observer.research_study_id(study_key)
    assert study_id is not None, "the study is not in the research Orthanc"
    instances = observer.orthanc("research", f"studies/{study_id}/instances")
    return [pydicom.dcmread(io.BytesIO(observer.orthanc("research", f"instances/{i['ID']}/file"))) for i in instances]


def crash(stack, service: str) -> None:
    """SIGKILL a service (no graceful shutdown, no commit) and wait until it is gone."""
    pid = stack.process(service).pid()
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # the session fixture started it: reap it, or it lingers as a zombie
    except ChildProcessError:
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.05)


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead process its new parent has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def deid_workers_of(pid: int) -> list[int]:
    """The service's multiprocessing children (its de-identification workers)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


def events_for(events: list[dict], study_key: str) -> list[dict]:
    return [e for e in events if e.get("study_key") == study_key]


async def test_a_study_flows_through_every_service(stack, observer, kafka, tmp_path, unique_seed):
    sample = push_sample(stack, tmp_path, patient=patient(unique_seed), seed=unique_seed)
    key = observer.study_key(sample.study_instance_uid)
    outcome = observer.wait_until_complete(key, 20, timeout=120)
    assert outcome.complete(20), outcome

    # The research Orthanc holds every instance, de-identified: no original name, ID, birth date or UID.
    files = research_files(observer, key)
    assert len(files) == 20
    forbidden = set(sample.original_uids) | {sample.patient.name, sample.patient.patient_id, sample.patient.birth_date}
    for ds in files:
        values = set(all_values(ds))
        assert not values & forbidden
        assert not any(sample.patient.name.split("^")[0] in v for v in values)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.StudyInstanceUID == key

    # The catalogue has the study and its series, with correct counts; the collection aggregate includes it.
    study = outcome.catalogue_study
    assert (study.series_count, study.instance_count) == (2, 20)
    assert study.modalities == ["CT"] and study.body_parts == ["CHEST"]
    assert sorted(s.instance_count for s in outcome.catalogue_series) == [10, 10]
    aggregates = outcome.collection["aggregates"]
    assert aggregates["studies"] >= 1 and aggregates["instances"] >= 20 and "CT" in aggregates["modalities"]

    # One audit record per event of this study.
    await kafka.wait_until_idle()
    study_events = events_for(await kafka.domain_events(), key)
    assert {e["event_type"] for e in study_events} == {"StudyReceived", "StudyAnonymised", "StudyIndexed"}
    records = list(observer.db[collections.AUDIT_RECORDS].find({"entity": key}))
    assert sorted(r["_id"] for r in records) == sorted({e["event_id"] for e in study_events})


async def test_the_same_study_sent_twice_makes_no_duplicates(stack, observer, kafka, tmp_path, unique_seed):
    sample = push_sample(stack, tmp_path / "first", patient=patient(unique_seed), seed=unique_seed)
    key = observer.study_key(sample.study_instance_uid)
    assert observer.wait_until_complete(key, 20, timeout=120).complete(20)
    await kafka.wait_until_idle()
    before = observer.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": "default"})["aggregates"]

    push_sample(stack, tmp_path / "again", patient=patient(unique_seed), seed=unique_seed)
    time.sleep(stack.settings.stable_age + 1)
    await kafka.wait_until_idle()

    outcome = observer.outcome(key)
    assert outcome.research_instances == 20
    assert observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": key}) == 1
    assert observer.db[collections.CATALOGUE_SERIES].count_documents({"study_key": key}) == 2
    after = observer.db[collections.CATALOGUE_COLLECTIONS].find_one({"_id": "default"})["aggregates"]
    assert after == before
    study_events = events_for(await kafka.domain_events(), key)
    records = list(observer.db[collections.AUDIT_RECORDS].find({"entity": key}))
    assert sorted(r["_id"] for r in records) == sorted({e["event_id"] for e in study_events})


async def test_a_duplicated_event_is_absorbed_everywhere(stack, observer, kafka, tmp_path, unique_seed):
    sample = push_sample(stack, tmp_path, patient=patient(unique_seed), seed=unique_seed)
    key = observer.study_key(sample.study_instance_uid)
    assert observer.wait_until_complete(key, 20, timeout=120).complete(20)
    await kafka.wait_until_idle()
    audit_before = observer.db[collections.AUDIT_RECORDS].count_documents({})

    received = [v for t, _, v in await kafka.read(StudyReceived.TOPIC)
                if json.loads(v)["study_key"] == key]
    producer = AIOKafkaProducer(**stack.kafka_client_options())
    await producer.start()
    try:
        await producer.send_and_wait(StudyReceived.TOPIC, received[0], key=key.encode())
    finally:
        await producer.stop()
    await kafka.wait_until_idle()

    assert observer.outcome(key).research_instances == 20
    assert observer.db[collections.CATALOGUE_SERIES].count_documents({"study_key": key}) == 2
    assert observer.db[collections.AUDIT_RECORDS].count_documents({}) == audit_before


async def test_killing_anonymisation_mid_study_loses_and_duplicates_nothing(stack, observer, kafka, tmp_path, unique_seed):
    sample = push_sample(stack, tmp_path, patient=patient(unique_seed), seed=unique_seed, series=4,
                         instances_per_series=40)
    key = observer.study_key(sample.study_instance_uid)
    deadline = time.monotonic() + 60
    while (count := observer.research_instance_count(key)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < count < 160, f"could not catch the study mid-flight ({count} instances)"
    workers = deid_workers_of(stack.process("anonymisation").pid())
    assert workers, "anonymisation runs no de-identification worker processes"
    crash(stack, "anonymisation")
    # Its worker processes die with it (decision 0090), however it died: none is left holding the key.
    deadline = time.monotonic() + 30
    while (alive := [w for w in workers if running(w)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"de-identification workers outlived the killed service: {alive}"
    stack.start("anonymisation")

    outcome = observer.wait_until_complete(key, 160, timeout=180)
    assert outcome.complete(160), outcome
    await kafka.wait_until_idle()
    assert observer.research_instance_count(key) == 160
    assert observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": key}) == 1
    study_events = events_for(await kafka.domain_events(), key)
    records = list(observer.db[collections.AUDIT_RECORDS].find({"entity": key}))
    assert sorted(r["_id"] for r in records) == sorted({e["event_id"] for e in study_events})
    assert Counter(r["action"] for r in records)["StudyIndexed"] >= 1


async def test_a_poison_message_is_dead_lettered_and_the_flow_goes_on(stack, observer, kafka, tmp_path, unique_seed):
    poison = json.dumps({"event_id": "not-a-uuid", "event_type": "StudyReceived", "study_key": "2.25.1"}).encode()
    producer = AIOKafkaProducer(**stack.kafka_client_options())
    await producer.start()
    try:
        await producer.send_and_wait(StudyReceived.TOPIC, poison, key=b"2.25.1")
    finally:
        await producer.stop()
    await kafka.wait_until_idle()

    dead = [(h, v) for _, h, v in await kafka.read(dead_letter_topic("anonymisation"))
            if v == poison]
    assert len(dead) == 1
    headers = dead[0][0]
    assert headers["x-dlq-original-topic"] == StudyReceived.TOPIC
    assert headers["x-dlq-attempts"] == str(3)
    assert "ValidationError" in headers["x-dlq-error"] or "validation" in headers["x-dlq-error"].lower()
    def dead_letter_audited() -> bool:
        records = observer.db[collections.AUDIT_RECORDS].find({"action": "DeadLettered"})
        return any({"kind": "topic", "key": StudyReceived.TOPIC} in r["entities"] for r in records)

    deadline = time.monotonic() + 60
    while not dead_letter_audited():
        assert time.monotonic() < deadline, "the dead letter was not audited"
        time.sleep(0.5)

    sample = push_sample(stack, tmp_path, patient=patient(unique_seed), seed=unique_seed, series=1, instances_per_series=3)
    key = observer.study_key(sample.study_instance_uid)
    assert observer.wait_until_complete(key, 3, timeout=120).complete(3)


async def test_burned_in_annotation_is_quarantined_and_never_released(stack, observer, kafka, tmp_path, unique_seed):
    from eucaim_node.cli.sample import write_sample_study

    sample = write_sample_study(tmp_path, patient=patient(unique_seed), seed=unique_seed, series=1, instances_per_series=2)
    flagged = pydicom.dcmread(sample.files[0])
    flagged.BurnedInAnnotation = "YES"
    flagged.save_as(sample.files[0])
    for path in sample.files:  # DICOMweb/REST upload, as a modality gateway would
        httpx.post(f"{stack.orthanc_url('clinical')}/instances", content=Path(path).read_bytes(),
                   auth=stack.orthanc_auth("clinical"), timeout=30).raise_for_status()
    key = observer.study_key(sample.study_instance_uid)
    deadline = time.monotonic() + 120
    while observer.db[collections.ANONYMISATION_QUARANTINE].count_documents({"study_key": key}) == 0:
        assert time.monotonic() < deadline, "nothing was quarantined"
        time.sleep(0.5)
    assert observer.wait_until_complete(key, 1, timeout=60).complete(1)
    [entry] = observer.db[collections.ANONYMISATION_QUARANTINE].find({"study_key": key})
    assert entry["reason"] == "burned-in-annotation"
    released = research_files(observer, key)
    assert [ds.SOPInstanceUID for ds in released] != [] and all(ds.get("BurnedInAnnotation") != "YES" for ds in released)
    quarantined = [e for e in events_for(await kafka.domain_events(), key) if e["event_type"] == "StudyQuarantined"]
    assert quarantined and quarantined[0]["quarantined_count"] == 1


def test_no_log_line_names_a_patient(stack):
    """Runs last in this module: every service log written so far, scanned for the sample identifiers."""
    identifying = ["TESTPATIENT", "ALICE", "MRN-", "19580203", "DOE^JANE", "HOSP-0042", "Rue des Lilas", "+33472112233"]
    for service in ("reception", "anonymisation", "metadata", "catalogue_sync", "audit"):
        text = stack.log_path(service).read_text(errors="replace")
        assert text, f"{service} wrote no log"
        for value in identifying:
            assert value not in text, f"{service} log contains an identifying value"
