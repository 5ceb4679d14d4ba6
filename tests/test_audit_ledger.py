"""The tamper-evident audit ledger against the real stack (Kafka, FerretDB, the five services).

The stack's audit service is replaced, for this module, by the same service started with a
signing key (generated on first use, as the setting allows), a 1 s head interval and syslog
forwarding to a TLS receiver this module starts. Tampering is done on the real MongoDB documents,
detected by the real `eucaim-node audit verify`, then undone, after which verify passes again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaProducer
from fhir.resources.R4B.auditevent import AuditEvent as AuditEventR4B
from fhir.resources.auditevent import AuditEvent as AuditEventR5
from lxml import etree

from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.events import StudyReceived
from eucaim_node.ledger import make_checkpoint, record_leaf_hash
from eucaim_node.ledger.store import AUDIT_LEDGER_STATE, AUDIT_TREE_HEADS, WITNESS_STATE
from eucaim_node.store import collections

pytestmark = [pytest.mark.integration]

RNG = Path(__file__).resolve().parent.parent / "libs" / "ledger" / "tests" / "dicom_audit_message.rng"


class SyslogReceiver:
    """An RFC 5425 receiver: TLS, octet-counted frames, kept in memory."""

    def __init__(self, certs: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = certs / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        self.frames: list[bytes] = []
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.context))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = await reader.readuntil(b" ")
                if not length[:-1].isdigit():
                    self.errors.append(f"bad frame length {length!r}")
                    return
                self.frames.append(await reader.readexactly(int(length[:-1])))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    receiver = SyslogReceiver(tmp_path_factory.mktemp("syslog"))
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def audit(stack, receiver, audit_node, tmp_path_factory):
    node = audit_node(stack, tmp_path_factory.mktemp("audit"), {
        "EUCAIM_AUDIT_HEAD_INTERVAL_SECONDS": "1",
        "EUCAIM_AUDIT_SYSLOG_HOST": "127.0.0.1",
        "EUCAIM_AUDIT_SYSLOG_PORT": str(receiver.port),
        "EUCAIM_AUDIT_SYSLOG_CA_FILE": str(receiver.ca_file),
        "EUCAIM_AUDIT_SYSLOG_SERVER_NAME": "localhost",
    })
    stack.stop("audit")
    node.start()
    yield node
    node.stop()
    stack.start("audit")


def patient(seed: str) -> SamplePatient:
    digits = str(abs(hash(seed)) % 10**6).zfill(6)
    return SamplePatient(name=f"AUDITPATIENT{digits}^BOB", patient_id=f"AUD-{digits}", birth_date="19610917",
                         accession_number=f"AACC-{digits}")


def leaves(observer) -> list[dict]:
    return list(observer.db[collections.AUDIT_RECORDS].find({"leaf_index": {"$exists": True}}).sort("leaf_index", 1))


def latest_head_size(observer) -> int:
    head = observer.db[AUDIT_TREE_HEADS].find_one({}, sort=[("_id", -1)])
    return head["_id"] if head else 0


@pytest.fixture(scope="module")
def study(audit, stack, observer, kafka, tmp_path_factory):
    """One sample study through the node, fully audited and covered by a signed head."""
    seed = f"audit-{os.getpid()}"
    sample = push_sample(stack, tmp_path_factory.mktemp("sample"), patient=patient(seed), seed=seed)
    key = observer.study_key(sample.study_instance_uid)
    flow = {"StudyReceived", "StudyAnonymised", "StudyIndexed"}  # audit needs no more of the flow than this
    audit.wait_for(lambda: flow <= set(observer.outcome(key).audit_actions), timeout=180, what="the study's records")
    asyncio.run(kafka.wait_until_idle())
    size = len(leaves(observer))
    audit.wait_for(lambda: latest_head_size(observer) >= size, what="a signed head over every record")
    audit.wait_for(lambda: (observer.db[AUDIT_LEDGER_STATE].find_one({"_id": WITNESS_STATE}) or {}).get("size", 0) >= size,
             what="the witness's cosignature on a head over every record")
    return sample, key


def test_every_event_is_one_leaf_and_the_ledger_verifies(audit, observer, study):
    sample, key = study
    records = list(observer.db[collections.AUDIT_RECORDS].find({"entity": key}))
    assert {"StudyReceived", "StudyAnonymised", "StudyIndexed"} <= {r["action"] for r in records}
    assert len({r["_id"] for r in records}) == len(records)
    assert all(isinstance(r["leaf_index"], int) and r["leaf_hash"] == record_leaf_hash(r).hex() for r in records)
    indices = [r["leaf_index"] for r in leaves(observer)]
    assert indices == list(range(len(indices)))
    assert audit.key_file.exists() and oct(audit.key_file.stat().st_mode & 0o777) == "0o600"
    result = audit.cli("verify")
    assert result.stdout.startswith("ledger OK:"), result.stdout
    # No identifying value of the patient is in any audit record.
    text = json.dumps(list(observer.db[collections.AUDIT_RECORDS].find()), default=str)
    for value in (*sample.patient.identifying_values(), *sample.original_uids):
        assert value not in text


def test_cli_commands_are_themselves_audited(audit, observer, study):
    audit.cli("verify")
    audit.wait_for(lambda: observer.db[collections.AUDIT_RECORDS].find_one(
        {"action": "AccessRecorded", "detail.action": "audit-verify", "who": {"$regex": "^cli:"}}),
        what="the AccessRecorded record of `audit verify`")
    record = observer.db[collections.AUDIT_RECORDS].find_one({"detail.action": "audit-verify"})
    assert record["what"]["code"] == "110101" and record["requestor"] is True and record["entity"] == audit.origin


async def test_a_redelivered_event_creates_no_record_and_no_leaf(audit, observer, kafka, stack, study):
    _, key = study
    await kafka.wait_until_idle()
    before = observer.db[collections.AUDIT_RECORDS].count_documents({})
    size = len(leaves(observer))
    received = [v for t, _, v in await kafka.read(StudyReceived.TOPIC) if json.loads(v)["study_key"] == key]
    producer = AIOKafkaProducer(**stack.kafka_client_options())
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(StudyReceived.TOPIC, received[0], key=key.encode())
    finally:
        await producer.stop()
    await kafka.wait_until_idle()
    assert observer.db[collections.AUDIT_RECORDS].count_documents({}) == before
    assert len(leaves(observer)) == size


# -- tampering ------------------------------------------------------------------------------------------------

@pytest.fixture
def quiet_ledger(audit, observer, study):
    """The audit service stopped (nothing appends), every record under a signed head; restarted afterwards."""
    audit.stop()
    records, heads = observer.db[collections.AUDIT_RECORDS], observer.db[AUDIT_TREE_HEADS]
    try:
        audit.cli("head", "--sign")
        assert latest_head_size(observer) == len(leaves(observer))
        assert audit.cli("verify").stdout.startswith("ledger OK")
        saved_records, saved_heads = list(records.find()), list(heads.find())
        try:
            yield records
        finally:  # whatever a test left behind, the ledger is as it was
            for collection, saved in ((records, saved_records), (heads, saved_heads)):
                collection.delete_many({})
                collection.insert_many(saved)
    finally:
        audit.start()


def verify_fails(audit, kind: str) -> str:
    result = audit.cli("verify", expect=1)
    first = result.stderr.split("first:", 1)[1].strip().splitlines()[0]
    assert kind in first, result.stderr
    return result.stderr


def test_an_edited_record_is_detected(audit, quiet_ledger):
    records = quiet_ledger
    victim = records.find_one({"leaf_index": 2})
    records.update_one({"_id": victim["_id"]}, {"$set": {"who": "somebody-else"}})
    try:
        stderr = verify_fails(audit, "(edited)")
        assert f"leaf 2 (record {victim['_id']})" in stderr
    finally:
        records.replace_one({"_id": victim["_id"]}, victim)
    assert audit.cli("verify").returncode == 0


def test_an_edit_with_recomputed_leaf_hash_is_caught_by_the_signed_head(audit, quiet_ledger):
    records = quiet_ledger
    victim = records.find_one({"leaf_index": 1})
    forged = {**victim, "outcome": "serious-failure"}
    forged["leaf_hash"] = record_leaf_hash(forged).hex()
    records.replace_one({"_id": victim["_id"]}, forged)
    try:
        verify_fails(audit, "signed tree head does not match the records")
    finally:
        records.replace_one({"_id": victim["_id"]}, victim)
    assert audit.cli("verify").returncode == 0


def test_a_deleted_record_is_detected(audit, quiet_ledger):
    records = quiet_ledger
    victim = records.find_one({"leaf_index": 3})
    records.delete_one({"_id": victim["_id"]})
    try:
        assert "leaf 3" in verify_fails(audit, "(deleted)")
    finally:
        records.insert_one(victim)
    assert audit.cli("verify").returncode == 0


def test_deleting_the_newest_records_is_detected(audit, quiet_ledger):
    records = quiet_ledger
    size = records.count_documents({"leaf_index": {"$exists": True}})
    tail = list(records.find({"leaf_index": {"$gte": size - 2}}))
    records.delete_many({"leaf_index": {"$gte": size - 2}})
    try:
        verify_fails(audit, "records deleted at the end")
    finally:
        records.insert_many(tail)
    assert audit.cli("verify").returncode == 0


def test_reordered_records_are_detected(audit, quiet_ledger):
    records = quiet_ledger
    a, b = records.find_one({"leaf_index": 1}), records.find_one({"leaf_index": 4})
    records.update_one({"_id": a["_id"]}, {"$set": {"leaf_index": -1}})
    records.update_one({"_id": b["_id"]}, {"$set": {"leaf_index": 1}})
    records.update_one({"_id": a["_id"]}, {"$set": {"leaf_index": 4}})
    try:
        stderr = verify_fails(audit, "reordered")
        assert "appended at leaf 4" in stderr
    finally:
        records.update_one({"_id": a["_id"]}, {"$set": {"leaf_index": -1}})
        records.replace_one({"_id": b["_id"]}, b)
        records.replace_one({"_id": a["_id"]}, a)
    assert audit.cli("verify").returncode == 0


def test_an_inserted_record_is_detected(audit, quiet_ledger):
    records = quiet_ledger
    originals = list(records.find({"leaf_index": {"$gte": 2}}))
    # Shift every record from leaf 2 on by one and put a well-formed forged record at leaf 2.
    template = records.find_one({"leaf_index": 1})
    forged = {**template, "_id": "forged-record", "leaf_index": 2, "who": "intruder"}
    forged["leaf_hash"] = record_leaf_hash(forged).hex()
    records.delete_many({"leaf_index": {"$gte": 2}})
    records.insert_many([forged, *({**r, "leaf_index": r["leaf_index"] + 1} for r in originals)])
    try:
        verify_fails(audit, "insert")
    finally:
        records.delete_many({"leaf_index": {"$gte": 2}})
        records.insert_many(originals)
    assert audit.cli("verify").returncode == 0
    # A record slipped in without a leaf is reported too.
    records.insert_one({**template, "_id": "outside", "leaf_index": None})
    records.update_one({"_id": "outside"}, {"$unset": {"leaf_index": ""}})
    try:
        verify_fails(audit, "inserted outside the ledger")
    finally:
        records.delete_one({"_id": "outside"})
    assert audit.cli("verify").returncode == 0


def test_a_forged_tree_head_is_detected(audit, quiet_ledger, observer):
    heads = observer.db[AUDIT_TREE_HEADS]
    latest = heads.find_one({}, sort=[("_id", -1)])
    lines = latest["note"].split("\n")
    lines[2] = base64.b64encode(b"\x07" * 32).decode()  # another root under the old signature
    heads.update_one({"_id": latest["_id"]}, {"$set": {"note": "\n".join(lines)}})
    try:
        verify_fails(audit, "(forged head)")
    finally:
        heads.replace_one({"_id": latest["_id"]}, latest)
    assert audit.cli("verify").returncode == 0
    # A head over the same records but signed by a key the verifier does not trust.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    size = latest["_id"] + 1000
    note = make_checkpoint(audit.origin, size, b"\x01" * 32).sign(Ed25519PrivateKey.generate())
    heads.insert_one({"_id": size, "note": note, "root": "", "peaks": []})
    try:
        verify_fails(audit, "(forged head)")
    finally:
        heads.delete_one({"_id": size})
    assert audit.cli("verify").returncode == 0


def test_an_externally_kept_head_catches_a_rewritten_ledger(audit, quiet_ledger, observer, tmp_path):
    """A witness keeps a head; the attacker rewrites a record *and* re-signs nothing: verify with --head fails."""
    kept = tmp_path / "witness-head.txt"
    kept.write_text(audit.cli("head").stdout)
    records = quiet_ledger
    victim = records.find_one({"leaf_index": 0})
    forged = {**victim, "who": "rewritten"}
    forged["leaf_hash"] = record_leaf_hash(forged).hex()
    heads = observer.db[AUDIT_TREE_HEADS]
    saved_heads = list(heads.find())
    records.replace_one({"_id": victim["_id"]}, forged)
    heads.delete_many({})  # the attacker also drops every stored head
    try:
        # Nothing left on the node contradicts the rewrite…
        assert "WITHOUT a witness" in audit.cli("verify", "--no-witness").stdout
        verify_fails_with_head = audit.cli("verify", "--no-witness", "--head", str(kept), expect=1)
        assert "signed tree head does not match the records" in verify_fails_with_head.stderr  # …but a kept head does,
        assert "witnessed (by" in audit.cli("verify", expect=1).stderr  # and so does the witness, by default
    finally:
        records.replace_one({"_id": victim["_id"]}, victim)
        heads.insert_many(saved_heads)
    assert audit.cli("verify", "--head", str(kept)).returncode == 0


# -- proofs ---------------------------------------------------------------------------------------------------

def test_inclusion_proof_verifies_offline_and_fails_when_altered(audit, observer, study, tmp_path):
    _, key = study
    record = observer.db[collections.AUDIT_RECORDS].find_one({"entity": key, "action": "StudyIndexed"})
    audit.wait_for(lambda: latest_head_size(observer) > record["leaf_index"], what="a head over the record")
    # The service stores the leaf and subtree hashes under each head it signs, so a proof reads O(log n) of them.
    audit.wait_for(lambda: (observer.db[AUDIT_LEDGER_STATE].find_one({"_id": "tree-nodes"}) or {}).get("size", 0)
                   > record["leaf_index"], what="the subtree hashes under the head")
    assert observer.db[collections.AUDIT_TREE_NODES].find_one({"_id": f"0/{record['leaf_index']}"})["hash"] == record["leaf_hash"]
    proof_file = tmp_path / "proof.json"
    result = audit.cli("prove", record["_id"], "--output", str(proof_file))
    assert "verified" in result.stderr
    proof = json.loads(proof_file.read_text())
    assert proof["leaf_index"] == record["leaf_index"] and proof["leaf_hash"] == record["leaf_hash"]
    public = tmp_path / "public.pem"
    public.write_text(audit.cli("public-key").stdout.split("-----END PUBLIC KEY-----")[0] + "-----END PUBLIC KEY-----\n")
    check = ["check-proof", str(proof_file), "--public-key", str(public), "--origin", audit.origin]
    assert audit.cli(*check).stdout.strip() == "inclusion proof verified"

    def altered(change) -> subprocess.CompletedProcess:
        forged = json.loads(proof_file.read_text())
        change(forged)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(forged))
        return audit.cli("check-proof", str(bad), "--public-key", str(public), "--origin", audit.origin, expect=1)

    def edit_record(p):
        data = json.loads(base64.b64decode(p["record"]))
        data["who"] = "someone"
        p["record"] = base64.b64encode(json.dumps(data).encode()).decode()

    altered(edit_record)
    altered(lambda p: p["audit_path"].__setitem__(0, "00" * 32))
    altered(lambda p: p.update(leaf_index=p["leaf_index"] + 1))
    altered(lambda p: p.update(checkpoint=p["checkpoint"].replace(f"\n{p['tree_size']}\n", f"\n{p['tree_size'] + 1}\n")))


def test_prove_builds_around_a_wrong_stored_subtree_hash_and_says_so(audit, observer, quiet_ledger):
    """(b) A wrong stored hash no longer makes every proof through it fail: `prove` rebuilds the path from the
    leaves and names the hash; it does not repair it, because the CLI's database user only reads (store.access)."""
    nodes = observer.db[collections.AUDIT_TREE_NODES]
    assert (observer.db[AUDIT_LEDGER_STATE].find_one({"_id": "tree-nodes"}) or {}).get("size", 0) >= 2
    record = quiet_ledger.find_one({"leaf_index": 1})
    saved = nodes.find_one({"_id": "0/0"})  # leaf 0's hash: on leaf 1's path in every head
    nodes.update_one({"_id": "0/0"}, {"$set": {"hash": "00" * 32}})
    try:
        result = audit.cli("prove", record["_id"])
        assert "warning: 1 stored subtree hash(es) disagree with the leaves (0/0)" in result.stderr
        assert "verified" in result.stderr and json.loads(result.stdout)["leaf_index"] == 1
        assert nodes.find_one({"_id": "0/0"})["hash"] == "00" * 32, "the read-only CLI wrote a subtree hash"
    finally:
        nodes.replace_one({"_id": "0/0"}, saved)


def test_consistency_proof_between_two_heads(audit, observer, study, tmp_path):
    sizes = [h["_id"] for h in observer.db[AUDIT_TREE_HEADS].find({}, sort=[("_id", 1)])]
    assert len(sizes) >= 2
    first, second = sizes[0], sizes[-1]
    proof_file = tmp_path / "consistency.json"
    audit.cli("consistency", str(first), str(second), "--output", str(proof_file))
    public = tmp_path / "public.pem"
    public.write_text(audit.cli("public-key").stdout.split("-----END PUBLIC KEY-----")[0] + "-----END PUBLIC KEY-----\n")
    check = ["check-proof", str(proof_file), "--public-key", str(public), "--origin", audit.origin]
    assert audit.cli(*check).stdout.strip() == "consistency proof verified"
    proof = json.loads(proof_file.read_text())
    proof["path"][-1] = "11" * 32
    proof_file.write_text(json.dumps(proof))
    audit.cli(*check, expect=1)


# -- exports --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version,model", [("R5", AuditEventR5), ("R4B", AuditEventR4B)])
def test_fhir_export_validates_and_carries_no_identifiers(audit, observer, study, tmp_path, version, model):
    sample, key = study
    out = tmp_path / f"audit-{version}.ndjson"
    audit.cli("export", "--since", "2000-01-01", "--format", "fhir", "--fhir-version", version, "--output", str(out))
    lines = out.read_text().splitlines()
    assert len(lines) >= 3
    events = [model.model_validate_json(line) for line in lines]
    by_id = {e.id: e for e in events}
    received = observer.db[collections.AUDIT_RECORDS].find_one({"entity": key, "action": "StudyReceived"})
    event = by_id[received["_id"]]
    coding = event.category[0].coding[0] if version == "R5" else event.type
    assert (coding.code, coding.system) == ("110104", "http://dicom.nema.org/resources/ontology/DCM")
    assert event.action == "C"
    text = out.read_text()
    assert f"urn:oid:{key}" in text
    for value in (*sample.patient.identifying_values(), *sample.original_uids):
        assert value not in text


def test_dicom_export_is_valid_ps3_15_a5(audit, observer, study, tmp_path):
    sample, key = study
    out = tmp_path / "audit.xml"
    audit.cli("export", "--since", "2000-01-01", "--format", "dicom", "--output", str(out))
    schema = etree.RelaxNG(etree.parse(str(RNG)))
    messages = out.read_text().splitlines()
    assert len(messages) >= 3
    for message in messages:
        document = etree.fromstring(message.encode())
        assert schema.validate(document), schema.error_log
    text = out.read_text()
    for value in (*sample.patient.identifying_values(), *sample.original_uids):
        assert value not in text
    studies = [m for m in messages if f'ParticipantObjectID="{key}"' in m]
    assert any('csd-code="110104"' in m for m in studies) and any('csd-code="110103"' in m for m in studies)


def test_records_are_forwarded_to_syslog_over_tls(audit, observer, receiver, study):
    size = len(leaves(observer))
    audit.wait_for(lambda: len(record_frames(receiver)) >= size, what="every record forwarded")
    assert not receiver.errors
    header = re.compile(rb"^<85>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ eucaim-node - IHE\+RFC-3881 - \xef\xbb\xbf")
    schema = etree.RelaxNG(etree.parse(str(RNG)))
    indices = []
    for frame in record_frames(receiver):
        match = header.match(frame)
        assert match, frame[:120]
        message = etree.fromstring(frame[match.end():])
        assert schema.validate(message), schema.error_log
        detail = message.find(".//ParticipantObjectDetail[@type='ledger-leaf-index']")
        indices.append(int(base64.b64decode(detail.get("value"))))
    # In leaf order, every leaf at least once (at-least-once: a resend after a crash may repeat a batch).
    assert sorted(set(indices)) == list(range(max(indices) + 1)) and max(indices) + 1 >= size


def record_frames(receiver) -> list[bytes]:
    return [f for f in receiver.frames if b" IHE+RFC-3881 " in f.split(b"\xef\xbb\xbf", 1)[0]]


def head_frames(receiver, msgid: bytes) -> list[str]:
    """The checkpoints forwarded with ``msgid`` (the message after the BOM)."""
    return [f.split(b"\xef\xbb\xbf", 1)[1].decode() for f in list(receiver.frames)
            if f.split(b"\xef\xbb\xbf", 1)[0].split(b" ")[5:6] == [msgid]]


def test_signed_heads_and_their_cosignatures_are_forwarded_to_syslog(audit, observer, receiver, study, stack):
    """A repository that only receives the syslog stream still gets the heads (and the witness's cosignatures) to
    check the records against: cutting the node's tail cannot cut the repository's copy of the heads."""
    from eucaim_node.ledger import load_public_key, open_note
    from eucaim_node.ledger.witness_client import Witness

    size = latest_head_size(observer)
    log_key = load_public_key(audit.key_file)
    witness = Witness.from_file(Path(stack.node_env()["EUCAIM_AUDIT_WITNESS_VKEY_FILE"]))

    def forwarded_sizes() -> set[int]:  # every forwarded head verifies with the log's key
        return {open_note(n, log_key, origin=audit.origin).size for n in head_frames(receiver, b"EUCAIM+TREE-HEAD")}

    audit.wait_for(lambda: size in forwarded_sizes(), what="the latest signed head forwarded")
    cosigned = audit.wait_for(lambda: head_frames(receiver, b"EUCAIM+COSIGNED-HEAD"), what="a cosigned head forwarded")
    for note in cosigned:
        open_note(note, log_key, origin=audit.origin)
        assert witness.check(note) > 0
