"""The audit ledger's witness, for real: the stack's witness process, the audit service, FerretDB and the CLI.

The attacks are those a node administrator could mount on the node's own database: cut the newest records
together with the heads that cover them, rewrite records no remaining local head covers, or fork the history
and re-sign it with the node's key. The witness keeps what it cosigned in its own state, so `audit verify`
(which checks against the witness by default, with trust anchors read from files) catches each of them.
Every tamper is undone after the test.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import httpx
import pytest

from eucaim_node.events import AccessRecorded
from eucaim_node.ledger import load_private_key, make_checkpoint, record_leaf_hash
from eucaim_node.ledger.merkle import consistency_proof, root
from eucaim_node.cli.audit import AuditCliSettings
from eucaim_node.ledger.store import AUDIT_LEDGER_STATE, AUDIT_TREE_HEADS, WITNESS_STATE
from eucaim_node.runtime import publish_events
from eucaim_node.settings import read_secret
from eucaim_node.store import collections

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def node(stack, audit_node, tmp_path_factory):
    """The audit service with a 1 s head interval in place of the stack's (60 s)."""
    node = audit_node(stack, tmp_path_factory.mktemp("witnessed"), {"EUCAIM_AUDIT_HEAD_INTERVAL_SECONDS": "1"})
    stack.stop("audit")
    node.start()
    yield node
    node.stop()
    stack.start("audit")


class Ledger:
    def __init__(self, stack, observer, node) -> None:
        self.stack, self.node = stack, node
        self.records = observer.db[collections.AUDIT_RECORDS]
        self.heads = observer.db[AUDIT_TREE_HEADS]
        self.state = observer.db[AUDIT_LEDGER_STATE]
        self.env = stack.node_env()

    def size(self) -> int:
        return self.records.count_documents({"leaf_index": {"$exists": True}})

    def latest_head_size(self) -> int:
        head = self.heads.find_one({}, sort=[("_id", -1)])
        return head["_id"] if head else 0

    def witnessed(self) -> tuple[int, str | None]:
        """(size, note) of the witness's latest cosigned checkpoint, asked of the witness itself."""
        response = httpx.get(f"{self.env['EUCAIM_AUDIT_WITNESS_URL']}/checkpoint",
                             params={"origin": self.node.origin}, timeout=5)
        if response.status_code == 404:
            return 0, None
        response.raise_for_status()
        return int(response.text.split("\n")[1]), response.text

    def append(self, count: int) -> None:
        """``count`` new records, through Kafka and the audit service like any access record."""
        before = self.size()
        settings = AuditCliSettings(_env_file=self.node.env_file)
        events = [AccessRecorded.create(cause=f"test:{time.time_ns()}:{i}", producer="cli", actor="cli:witness-test",
                                        action="audit-test", target=self.node.origin, outcome="success", detail={})
                  for i in range(count)]
        asyncio.run(publish_events(settings, *events))
        self.node.wait_for(lambda: self.size() >= before + count, what=f"{count} new records")

    def submit(self, old: int, proof: list[bytes], note: str) -> httpx.Response:
        """An add-checkpoint request as the attacker can make it (the node's token and log key)."""
        body = f"old {old}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof) + "\n" + note
        token = read_secret(Path(self.env["EUCAIM_AUDIT_WITNESS_TOKEN_FILE"]))
        return httpx.post(f"{self.env['EUCAIM_AUDIT_WITNESS_URL']}/add-checkpoint", content=body.encode(),
                          headers={"authorization": f"Bearer {token}"}, timeout=10)


@pytest.fixture
def quiet(stack, observer, node):
    """At least 6 records, all under a head the witness cosigned; the audit service stopped meanwhile; every
    record and head restored afterwards."""
    ledger = Ledger(stack, observer, node)
    ledger.append(max(1, 6 - ledger.size()))
    node.wait_for(lambda: ledger.witnessed()[0] == ledger.size() == ledger.latest_head_size(),
             what="the witness's cosignature on a head over every record")
    node.stop()
    saved_records, saved_heads = list(ledger.records.find()), list(ledger.heads.find())
    assert "ledger OK" in node.cli("verify").stdout
    try:
        yield ledger
    finally:
        for collection, saved in ((ledger.records, saved_records), (ledger.heads, saved_heads)):
            collection.delete_many({})
            collection.insert_many(saved)
        node.start()


def fails(node, *words: str) -> str:
    result = node.cli("verify", expect=1)
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


def test_cutting_the_newest_records_with_their_heads_is_caught_by_the_witness(quiet):
    ledger, size = quiet, quiet.size()
    ledger.records.delete_many({"leaf_index": {"$gte": size - 2}})
    ledger.heads.delete_many({"_id": {"$gt": size - 2}})
    # The node's own heads no longer say anything about the cut tail…
    assert "ledger OK" in ledger.node.cli("verify", "--no-witness").stdout
    # …the witness does, by default.
    stderr = fails(ledger.node, "records deleted at the end", f"witnessed (by {ledger.stack.settings.name}.witness")
    assert f"head of size {size}, but only {size - 2} leaves" in stderr


def test_rewriting_a_record_no_local_head_covers_is_caught_by_the_witness(quiet):
    ledger, size = quiet, quiet.size()
    ledger.heads.delete_many({"_id": {"$gt": size - 2}})  # the tail is now "unsigned" as far as the node shows
    victim = ledger.records.find_one({"leaf_index": size - 1})
    forged = {**victim, "who": "rewritten", "outcome": "serious-failure"}
    forged["leaf_hash"] = record_leaf_hash(forged).hex()
    ledger.records.replace_one({"_id": victim["_id"]}, forged)
    verified = ledger.node.cli("verify", "--no-witness").stdout
    assert "ledger OK" in verified and "WITHOUT a witness" in verified
    fails(ledger.node, "signed tree head does not match the records", "witnessed (by")


def test_a_forked_history_is_refused_by_the_witness_and_fails_verify(quiet):
    ledger, size = quiet, quiet.size()
    key = load_private_key(ledger.node.key_file)  # the attacker holds the node's signing key
    victim = ledger.records.find_one({"leaf_index": 1})
    forged = {**victim, "who": "somebody-else"}
    forged["leaf_hash"] = record_leaf_hash(forged).hex()
    ledger.records.replace_one({"_id": victim["_id"]}, forged)
    leaves = [bytes.fromhex(r["leaf_hash"]) for r in ledger.records.find({"leaf_index": {"$exists": True}},
                                                                          sort=[("leaf_index", 1)])]
    # The same size, another root: 409 (the witness keeps the tree it saw).
    fork = make_checkpoint(ledger.node.origin, size, root(leaves)).sign(key)
    same_size = ledger.submit(size, [], fork)
    assert same_size.status_code == 409 and same_size.text == f"{size}\n"
    # A larger forked tree with a proof from the witnessed size: the proof cannot match the witnessed root: 422.
    longer = leaves + [leaves[0]]
    bigger = make_checkpoint(ledger.node.origin, size + 1, root(longer)).sign(key)
    assert ledger.submit(size, consistency_proof(size, longer), bigger).status_code == 422
    assert ledger.witnessed()[0] == size  # nothing moved
    # The attacker re-signs every local head over the forked history: only the witness disagrees.
    for head in list(ledger.heads.find()):
        note = make_checkpoint(ledger.node.origin, head["_id"], root(leaves[:head["_id"]])).sign(key)
        ledger.heads.update_one({"_id": head["_id"]}, {"$set": {"note": note}})
    assert "ledger OK" in ledger.node.cli("verify", "--no-witness").stdout
    fails(ledger.node, "signed tree head does not match the records", "witnessed (by")


def test_an_unknown_log_a_foreign_key_and_a_missing_token_are_refused(quiet):
    ledger, size = quiet, quiet.size()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    honest = ledger.heads.find_one({"_id": size})["note"]
    foreign = make_checkpoint(ledger.node.origin, size + 5, b"\1" * 32).sign(Ed25519PrivateKey.generate())
    assert ledger.submit(size, [], foreign).status_code == 403
    other_log = make_checkpoint("elsewhere/audit", 1, b"\1" * 32).sign(load_private_key(ledger.node.key_file))
    assert ledger.submit(0, [], other_log).status_code == 404
    anonymous = httpx.post(f"{ledger.env['EUCAIM_AUDIT_WITNESS_URL']}/add-checkpoint",
                           content=f"old {size}\n\n{honest}".encode(), timeout=10)
    assert anonymous.status_code == 401
    assert ledger.submit(size, [], honest).status_code == 200  # the honest head again: cosigned again


def scrape_pending(stack) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.settings.health_port('audit')}/metrics", timeout=5).text
    line = next(l for l in text.splitlines() if l.startswith('eucaim_audit_witness_pending_leaves{service="audit"}'))
    return float(line.rsplit(" ", 1)[1])


def test_a_witness_down_delays_nothing_and_gets_the_backlog_when_it_returns(stack, observer, node):
    ledger = Ledger(stack, observer, node)
    ledger.append(1)
    node.wait_for(lambda: ledger.witnessed()[0] == ledger.latest_head_size() > 0, what="a witnessed head")
    stack.stop("witness")
    try:
        before = ledger.size()
        ledger.append(3)  # recorded while the witness is down: nothing is lost
        assert ledger.size() >= before + 3
        node.wait_for(lambda: ledger.latest_head_size() >= before + 3, what="heads signed while the witness is down")
        state = node.wait_for(lambda: (s := ledger.state.find_one({"_id": WITNESS_STATE})) and s.get("last_error") and s,
                         what="the pending state recorded")
        assert "unreachable" in state["last_error"] and state["size"] < ledger.latest_head_size()
        node.wait_for(lambda: scrape_pending(stack) >= 3, what="the witness lag in the metrics")
        result = node.cli("verify", expect=1)  # no witness, no verification: one clear line
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "ledger NOT verified" in result.stderr and "unreachable" in result.stderr
    finally:
        stack.start("witness")
    node.wait_for(lambda: ledger.witnessed()[0] >= ledger.latest_head_size() >= before + 3, what="the backlog cosigned")
    node.wait_for(lambda: scrape_pending(stack) == 0, what="no witness lag")
    assert "ledger OK" in node.cli("verify").stdout
