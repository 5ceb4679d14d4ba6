"""The real infrastructure of the test profile: Kafka 4.2 (KRaft), FerretDB, two Orthancs, storescu, dciodvfy.

A component that cannot start makes these tests FAIL (ComponentFailed), never skip. Names are unique per run,
so the module shares the session's test stack (root conftest.py) with the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from pathlib import Path

import httpx
import pymongo
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from eucaim_node.stack import INFRASTRUCTURE, Stack
from eucaim_node.stack.configs import parse_env_file
from eucaim_node.stack.dicom_tools import DicomToolError, dciodvfy, storescu

pytestmark = pytest.mark.integration


# ``stack`` is the session fixture of the root conftest.py: the test profile, reset and started once.


def run_id() -> str:
    return uuid.uuid4().hex[:10]


def make_ct(path: Path, sop_class: str = CTImageStorage) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "Stack^Test", "STACK-1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.StudyDate, ds.InstanceNumber = "CT", "20240101", 1
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = bytes(8 * 8 * 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


# -- the stack itself ---------------------------------------------------------------------------------------

def test_every_infrastructure_component_is_healthy(stack: Stack) -> None:
    statuses = stack.status()
    for name in INFRASTRUCTURE:
        assert statuses[name].healthy, name
        assert statuses[name].pid is not None
        assert Path(statuses[name].log).is_file()


def test_up_is_idempotent(stack: Stack) -> None:
    pids = {name: s.pid for name, s in stack.status().items() if name in INFRASTRUCTURE}
    stack.up()
    assert {name: s.pid for name, s in stack.status().items() if name in INFRASTRUCTURE} == pids


def test_state_files(stack: Stack) -> None:
    assert stat.S_IMODE(stack.hmac_key_file().stat().st_mode) == 0o600
    assert len(stack.hmac_key_file().read_bytes()) == 32
    env = parse_env_file(stack.node_env_file().read_text())
    assert env == stack.node_env()
    assert env["EUCAIM_KAFKA_BOOTSTRAP_SERVERS"] == stack.kafka_bootstrap() == f"127.0.0.1:{stack.settings.kafka_port}"
    for instance in ("clinical", "research"):
        assert stat.S_IMODE(stack.orthanc_password_file(instance).stat().st_mode) == 0o600
        password = stack.orthanc_auth(instance)[1]
        assert password not in stack.node_env_file().read_text()
        assert password not in json.dumps({name: s.to_dict() for name, s in stack.status().items()})
    assert (env["EUCAIM_KAFKA_SECURITY_PROTOCOL"], env["EUCAIM_KAFKA_SASL_USERNAME"]) == ("SASL_SSL", "operator")
    kafka_secrets = Path(env["EUCAIM_KAFKA_SASL_PASSWORD_FILE"]).parent
    assert stat.S_IMODE(kafka_secrets.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in kafka_secrets.iterdir() if f.name != "kafka.pem"} == {0o600}
    assert stat.S_IMODE((stack.state_dir / "kafka" / "server.properties").stat().st_mode) == 0o600


def test_restart_one_component(stack: Stack) -> None:
    before = stack.process("orthanc-research").pid()
    stack.restart("orthanc-research")
    after = stack.status()["orthanc-research"]
    assert after.healthy and after.pid not in (None, before)


# -- Kafka 4.2 with aiokafka 0.14 ---------------------------------------------------------------------------

async def test_kafka_idempotent_produce_and_group_consume_with_manual_commit(stack: Stack) -> None:
    options, topic, group = stack.kafka_client_options(), f"stack-test-{run_id()}", f"stack-test-{run_id()}"
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        assert all(error_code == 0 for _, error_code, *_ in response.topic_errors)
        assert topic in await admin.list_topics()

        producer = AIOKafkaProducer(**options, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            sent = [await producer.send_and_wait(topic, f"v{i}".encode(), key=f"study-{i % 4}".encode())
                    for i in range(12)]
        finally:
            await producer.stop()
        assert {md.partition for md in sent} <= {0, 1, 2}

        consumer = AIOKafkaConsumer(topic, **options, group_id=group, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        received: list[bytes] = []
        try:
            async with asyncio.timeout(60):
                while len(received) < 12:
                    for records in (await consumer.getmany(timeout_ms=1000)).values():
                        received += [r.value for r in records if r.value is not None]
            await consumer.commit()
            committed = {tp.partition: await consumer.committed(tp) for tp in consumer.assignment()}
        finally:
            await consumer.stop()
        assert sorted(received) == sorted(f"v{i}".encode() for i in range(12))
        ends: dict[int, int] = {}
        for md in sent:
            ends[md.partition] = max(ends.get(md.partition, 0), md.offset + 1)
        assert {p: c for p, c in committed.items() if p in ends} == ends

        # the same group resumes after its committed offsets: nothing new
        again = AIOKafkaConsumer(topic, **options, group_id=group, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        await again.start()
        try:
            assert sum(len(v) for v in (await again.getmany(timeout_ms=2000)).values()) == 0
            for partition, offset in ends.items():
                assert await again.committed(TopicPartition(topic, partition)) == offset
        finally:
            await again.stop()
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_kafka_does_not_create_topics_implicitly(stack: Stack) -> None:
    from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

    topic = f"never-created-{run_id()}"
    producer = AIOKafkaProducer(**stack.kafka_client_options(), request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises((UnknownTopicOrPartitionError, KafkaTimeoutError)):
            await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(**stack.kafka_client_options())
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


# -- FerretDB through PyMongo's AsyncMongoClient ------------------------------------------------------------

async def test_ferretdb_ping_and_unique_index(stack: Stack) -> None:
    client: AsyncMongoClient[dict[str, object]] = stack.mongo_client(asynchronous=True)
    database = f"stack_test_{run_id()}"
    try:
        assert (await client.admin.command("ping"))["ok"] == 1.0
        collection = client[database]["things"]
        await collection.create_index("key", unique=True)
        await collection.insert_one({"key": "a"})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"key": "a"})
    finally:
        await client.drop_database(database)
        await client.close()


async def test_ferretdb_supports_what_the_node_uses(stack: Stack) -> None:
    """Upserts, $inc, find_one_and_update, distinct, count_documents (see docs/decisions/0002)."""
    client: AsyncMongoClient[dict[str, object]] = stack.mongo_client(asynchronous=True)
    database = f"stack_test_{run_id()}"
    try:
        c = client[database]["docs"]
        await c.create_index("key", unique=True)
        result = await c.update_one({"key": "s1"}, {"$set": {"v": 1}, "$setOnInsert": {"first": True}}, upsert=True)
        assert result.upserted_id is not None
        await c.update_one({"key": "s1"}, {"$set": {"v": 2}, "$setOnInsert": {"first": False}}, upsert=True)
        await c.update_one({"key": "s1"}, {"$inc": {"n": 5}})
        doc = await c.find_one({"key": "s1"}, {"_id": 0})
        assert doc == {"key": "s1", "v": 2, "first": True, "n": 5}
        after = await c.find_one_and_update({"key": "s2"}, {"$inc": {"seq": 1}}, upsert=True,
                                            return_document=ReturnDocument.AFTER)
        assert after is not None and after["seq"] == 1
        before = await c.find_one_and_update({"key": "s2"}, {"$inc": {"seq": 1}},
                                             return_document=ReturnDocument.BEFORE)
        assert before is not None and before["seq"] == 1
        assert sorted(await c.distinct("key")) == ["s1", "s2"]
        assert await c.count_documents({}) == 2
        assert await c.count_documents({"key": "s2", "seq": 2}) == 1
        with pytest.raises(DuplicateKeyError):  # an upsert that would insert a duplicate
            await c.update_one({"key": "s1", "v": 99}, {"$set": {"x": 1}}, upsert=True)
    finally:
        await client.drop_database(database)
        await client.close()


# -- Orthanc ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("instance,aet", [("clinical", "CLINICAL"), ("research", "RESEARCH")])
def test_orthanc_requires_auth(stack: Stack, instance: str, aet: str) -> None:
    url = stack.orthanc_url(instance)
    ok = httpx.get(f"{url}/system", auth=stack.orthanc_auth(instance), timeout=10)
    assert ok.status_code == 200
    assert ok.json()["DicomAet"] == aet
    assert ok.json()["Version"] == "1.10.1"
    assert httpx.get(f"{url}/system", timeout=10).status_code == 401
    assert httpx.get(f"{url}/system", auth=(stack.orthanc_auth(instance)[0], "wrong"), timeout=10).status_code == 401
    plugins = httpx.get(f"{url}/plugins", auth=stack.orthanc_auth(instance), timeout=10).json()
    assert "dicom-web" in plugins
    assert httpx.get(f"{url}/dicom-web/studies", auth=stack.orthanc_auth(instance), timeout=10).status_code == 200


# -- DICOM tools --------------------------------------------------------------------------------------------

def test_storescu_directory_into_clinical_orthanc(stack: Stack, tmp_path: Path) -> None:
    first = make_ct(tmp_path / "study" / "a.dcm")
    second = make_ct(tmp_path / "study" / "nested" / "b.dcm")
    host, port, aet = stack.orthanc_dicom("clinical")
    storescu(tmp_path / "study", host, port, aet)
    for ds in (first, second):
        found = httpx.post(f"{stack.orthanc_url('clinical')}/tools/lookup", content=str(ds.SOPInstanceUID),
                           auth=stack.orthanc_auth("clinical"), timeout=10).json()
        assert [entry["Type"] for entry in found] == ["Instance"]


def test_storescu_failure_carries_the_tool_output(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "private.dcm"
    make_ct(path, sop_class="1.2.826.0.1.3680043.9.9999.1.1")  # a SOP class dcmtk does not know
    host, port, aet = stack.orthanc_dicom("clinical")
    with pytest.raises(DicomToolError, match="unknown storage SOP class"):
        storescu([path], host, port, aet)


def test_dciodvfy_reports_errors_and_warnings(tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    make_ct(path)  # a deliberately incomplete CT: type 2 attributes are missing
    report = dciodvfy(path)
    assert report.lines
    assert report.errors == len(report.error_lines) > 0
    assert report.warnings == len(report.warning_lines)
    assert any("PatientBirthDate" in line for line in report.error_lines)


def test_ferretdb_sync_client_too(stack: Stack) -> None:
    client: pymongo.MongoClient[dict[str, object]] = stack.mongo_client()
    try:
        assert client.admin.command("ping")["ok"] == 1.0
    finally:
        client.close()


def test_reset_wipes_state_but_not_the_cache(tmp_path: Path) -> None:
    """On a private profile (own state dir, ports +30000) with only FerretDB, the cheapest real component."""
    from eucaim_node.stack import PORT_FIELDS, StackSettings

    ports = {field: getattr(StackSettings(), field) + 30000 for field in PORT_FIELDS}
    private = Stack(StackSettings.test_profile(name="reset-check", state_dir=tmp_path / "state", **ports))
    try:
        private.start("ferretdb")
        client: pymongo.MongoClient[dict[str, object]] = private.mongo_client()
        client["reset_check"]["x"].insert_one({"k": 1})
        client.close()
        key = private.hmac_key_file().read_bytes()

        private.reset()
        assert private.status()["ferretdb"].pid is None
        assert not private.hmac_key_file().exists()
        assert [p.name for p in (tmp_path / "state").iterdir()] in ([], [".lock"])
        assert private.settings.cache_dir.is_dir()

        private.start("ferretdb")
        client = private.mongo_client()
        assert "reset_check" not in client.list_database_names()
        client.close()
        assert private.hmac_key_file().read_bytes() != key
    finally:
        private.down()
