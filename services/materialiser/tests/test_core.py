"""The materialiser's core with in-process stand-ins: commands applied once, crash-safe resumable materialisation,
withdrawal that leaves nothing of the subject on disk and a successor without them."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eucaim_node.datasets import Creation, State, StudyRef, new_dataset_id
from eucaim_node.datasets.integrity import verify
from eucaim_node.datasets.layout import DatasetRoot
from eucaim_node.datasets.memory import MemoryStore
from eucaim_node.events import (DatasetCommand, DatasetDefinition, DatasetGrantRequest, DatasetStudy,
                                WithdrawalRequested)
from eucaim_node.materialiser.core.commands import CommandApplier
from eucaim_node.materialiser.core.materialise import Materialiser
from eucaim_node.materialiser.ports import ArchiveUnusable, SourceMismatch, SourceSeries
from eucaim_node.materialiser.core.withdrawal import WithdrawalHandler, successor_id

S1, S2 = "EUCAIM-LOCAL-" + "1" * 20, "EUCAIM-LOCAL-" + "2" * 20


class Source:
    """Two studies, one per subject, two series each, three instances per series.

    ``fetched`` lists every instance written, by archive or alone; ``archives`` the series fetched as archives.
    ``fail_after`` n files: the (n+1)th raises (mid-archive too); ``archive_lacks``: instance IDs a series archive
    leaves out; ``broken_archives``: every archive is unusable; ``gone``: instances no longer in Orthanc."""

    def __init__(self, fail_after: int | None = None, *, archive_lacks: frozenset[str] = frozenset(),
                 broken_archives: bool = False, gone: frozenset[str] = frozenset()) -> None:
        self.fetched: list[str] = []
        self.archives: list[str] = []
        self.fail_after, self.archive_lacks, self.broken_archives, self.gone = (
            fail_after, archive_lacks, broken_archives, gone)

    async def study_id(self, study_uid: str) -> str | None:
        return {"2.25.1": "o1", "2.25.2": "o2"}.get(study_uid)

    async def series_instances(self, orthanc_study_id: str) -> dict[str, SourceSeries]:
        n = orthanc_study_id[-1]
        return {f"2.25.{n}{s}": SourceSeries(f"s{n}{s}", tuple((f"i{n}{s}{i}", f"2.25.{n}{s}{i}") for i in range(3)))
                for s in (1, 2)}

    def _write(self, instance_id: str, target: Path) -> None:
        if self.fail_after is not None and len(self.fetched) >= self.fail_after:
            raise ConnectionError("research Orthanc went away")
        self.fetched.append(instance_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"DICM" + instance_id.encode() * 50)

    async def fetch(self, instance_id: str, target: Path) -> None:
        if instance_id in self.gone:
            raise SourceMismatch(f"instance {instance_id} is no longer in the research Orthanc")
        self._write(instance_id, target)

    async def fetch_series(self, series: SourceSeries, series_uid: str, targets) -> None:
        self.archives.append(series.orthanc_id)
        if self.broken_archives:
            raise ArchiveUnusable(f"the archive of series {series_uid} is unreadable (BadZipFile)")
        for instance_id, sop in series.instances:
            if sop in targets and instance_id not in self.archive_lacks | self.gone:
                self._write(instance_id, targets[sop])


class Clinical:
    async def eforms(self, subjects):
        return {s: {"sexCodes": ["248152002"]} for s in subjects}


class Outcomes:
    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}

    async def get(self, command_id):
        return self.docs.get(command_id)

    async def record(self, command_id, *, ok, message, dataset_id):
        self.docs.setdefault(command_id, {"ok": ok, "message": message, "dataset_id": dataset_id})


def refs() -> tuple[StudyRef, ...]:
    return (StudyRef(study_uid="2.25.1", subject=S1, collection_id="c", series=("2.25.11", "2.25.12")),
            StudyRef(study_uid="2.25.2", subject=S2, collection_id="c", series=("2.25.21", "2.25.22")))


def command(kind: str, dataset_id: str, n: int = 0, **fields) -> DatasetCommand:
    return DatasetCommand.create(cause=f"test:{kind}:{dataset_id}:{n}", producer="cli", command=kind, actor="cli:dm@h",
                                 dataset_id=dataset_id, **fields)


def definition(name: str = "lungs") -> DatasetDefinition:
    return DatasetDefinition(name=name, provenance=json.dumps({"kind": "studies"}),
                             studies=tuple(DatasetStudy(**r.model_dump()) for r in refs()))


@pytest.fixture
def node(tmp_path):
    store, outcomes, events = MemoryStore(), Outcomes(), []

    async def publish(event):
        events.append(event)

    source = Source()
    materialiser = Materialiser(store, source, Clinical(), DatasetRoot(tmp_path), publish, concurrency=3)
    return {"store": store, "outcomes": outcomes, "events": events, "source": source, "root": DatasetRoot(tmp_path),
            "materialiser": materialiser, "applier": CommandApplier(store, outcomes, publish),
            "withdrawals": WithdrawalHandler(store, materialiser, publish)}


async def test_define_materialise_release_publish_with_eucaim_audit_records(node):
    dataset_id = new_dataset_id()
    define = command("define", dataset_id, definition=definition())
    await node["applier"].apply(define)
    await node["applier"].apply(define)  # redelivered: applied once
    assert node["outcomes"].docs[str(define.event_id)]["ok"]
    await node["materialiser"].run_once()
    dataset = await node["store"].get(dataset_id)
    assert dataset.creation is Creation.DONE and dataset.hashes.files == 12 + 2
    root = node["root"]
    assert verify(root.dataset_dir(dataset_id), root.bag_dir(dataset_id), dataset.hashes).ok
    assert not root.staging_dir(dataset_id).exists()
    assert oct(os.stat(root.dataset_dir(dataset_id) / "index.json").st_mode & 0o777) == "0o444"
    index = json.loads((root.dataset_dir(dataset_id) / "index.json").read_text())
    assert [s["path"] for s in index] == [f"{S1}/2.25.1", f"{S2}/2.25.2"]
    for kind in ("release", "publish"):
        await node["applier"].apply(command(kind, dataset_id))
    assert (await node["store"].get(dataset_id)).state is State.PUBLISHED
    again = command("release", dataset_id, 1)
    await node["applier"].apply(again)
    assert not node["outcomes"].docs[str(again.event_id)]["ok"]  # a released version never changes
    actions = [(e.action, e.detail.get("operation"), e.outcome) for e in node["events"]]
    assert ("CREATE_DATASET", None, "success") in actions and ("CREATE_DATASET", "MATERIALISED", "success") in actions
    assert ("UPDATE_DATASET", "RELEASE", "success") in actions and ("UPDATE_DATASET", "PUBLISH", "success") in actions
    assert ("UPDATE_DATASET", "RELEASE", "denied") in actions


async def test_duplicate_name_and_expired_grant_are_refused(node):
    first, second = new_dataset_id(), new_dataset_id()
    await node["applier"].apply(command("define", first, definition=definition()))
    dup = command("define", second, definition=definition())
    await node["applier"].apply(dup)
    assert "exists already" in node["outcomes"].docs[str(dup.event_id)]["message"]
    past = datetime.now(UTC) - timedelta(days=1)
    grant = command("grant", first, grant=DatasetGrantRequest(grant_id=new_dataset_id(), grantee="alice",
                                                              valid_from=past - timedelta(days=1), valid_until=past))
    await node["applier"].apply(grant)
    assert "expired" in node["outcomes"].docs[str(grant.event_id)]["message"]


async def test_delete_is_refused_while_a_grant_is_open_then_removes_the_files(node):
    dataset_id = new_dataset_id()
    await node["applier"].apply(command("define", dataset_id, definition=definition()))
    await node["materialiser"].run_once()
    grant_id = new_dataset_id()
    await node["applier"].apply(command("grant", dataset_id, grant=DatasetGrantRequest(
        grant_id=grant_id, grantee="alice", valid_from=datetime.now(UTC),
        valid_until=datetime.now(UTC) + timedelta(days=1))))
    refused = command("delete", dataset_id)
    await node["applier"].apply(refused)
    assert "open access grant" in node["outcomes"].docs[str(refused.event_id)]["message"]
    await node["applier"].apply(command("revoke", dataset_id, grant_id=grant_id))
    await node["applier"].apply(command("delete", dataset_id, 1))
    await node["materialiser"].run_once()
    assert not node["root"].dataset_dir(dataset_id).exists() and not node["root"].bag_dir(dataset_id).exists()


async def test_an_interrupted_materialisation_resumes_without_fetching_twice(node, tmp_path):
    dataset_id = new_dataset_id()
    await node["applier"].apply(command("define", dataset_id, definition=definition()))
    failing = Source(fail_after=5)
    node["materialiser"].source = failing
    with pytest.raises(ConnectionError):
        await node["materialiser"].run_once()
    assert (await node["store"].get(dataset_id)).creation is Creation.RUNNING
    assert not node["root"].dataset_dir(dataset_id).exists()  # no half dataset under its ID
    resumed = Source()
    node["materialiser"].source = resumed
    await node["materialiser"].run_once()
    assert len(resumed.fetched) == 12 - len(failing.fetched)
    assert sorted(resumed.fetched + failing.fetched) == sorted(set(resumed.fetched + failing.fetched))
    # A series of which nothing was written comes as an archive again; one the failure cut in half (fail_after=5:
    # s11 whole, two files of s12) is completed instance by instance.
    assert failing.archives and sorted(resumed.archives) == ["s21", "s22"]
    dataset = await node["store"].get(dataset_id)
    assert dataset.creation is Creation.DONE
    assert verify(node["root"].dataset_dir(dataset_id), node["root"].bag_dir(dataset_id), dataset.hashes).ok


async def test_withdrawal_invalidates_removes_files_and_creates_a_successor_without_the_subject(node, tmp_path):
    dataset_id = new_dataset_id()
    await node["applier"].apply(command("define", dataset_id, definition=definition()))
    await node["materialiser"].run_once()
    withdrawal = WithdrawalRequested.create(cause="w", producer="cli", subject_key=S1)
    await node["withdrawals"].withdraw(withdrawal)
    await node["withdrawals"].withdraw(withdrawal)  # redelivered: nothing new
    old = await node["store"].get(dataset_id)
    assert old.invalidated and old.invalidation_reason == "withdrawal"
    assert old.next_id == successor_id(dataset_id, S1)
    assert not any(S1 in str(p) for p in tmp_path.rglob("*")), "a file of the withdrawn subject is on disk"
    await node["materialiser"].run_once()
    new = await node["store"].get(old.next_id)
    assert (new.version, new.previous_id, new.state, new.creation) == (2, dataset_id, State.DRAFT, Creation.DONE)
    assert new.subjects == (S2,)
    assert not any(S1 in str(p) for p in tmp_path.rglob("*"))
    assert len([d for d in await node["store"].list()]) == 2
    reactivate = command("reactivate", dataset_id)
    await node["applier"].apply(reactivate)
    assert "consent withdrawal" in node["outcomes"].docs[str(reactivate.event_id)]["message"]


async def test_an_instance_an_archive_lacks_or_a_broken_archive_is_fetched_alone(node):
    """Decision 0130: an archive is an optimisation; what it does not deliver comes instance by instance."""
    lacking = Source(archive_lacks=frozenset({"i112"}))
    node["materialiser"].source = lacking
    first = new_dataset_id()
    await node["applier"].apply(command("define", first, definition=definition()))
    await node["materialiser"].run_once()
    assert sorted(lacking.archives) == ["s11", "s12", "s21", "s22"]
    assert sorted(lacking.fetched) == sorted({f"i{n}{s}{i}" for n in (1, 2) for s in (1, 2) for i in range(3)})
    broken = Source(broken_archives=True)
    node["materialiser"].source = broken
    second = new_dataset_id()
    await node["applier"].apply(command("define", second, definition=definition("other")))
    await node["materialiser"].run_once()
    assert len(broken.archives) == 4 and len(broken.fetched) == 12
    for dataset_id in (first, second):
        dataset = await node["store"].get(dataset_id)
        assert dataset.creation is Creation.DONE
        assert verify(node["root"].dataset_dir(dataset_id), node["root"].bag_dir(dataset_id), dataset.hashes).ok


async def test_an_instance_gone_from_the_research_orthanc_fails_the_dataset_with_a_reason_and_no_files(node):
    node["materialiser"].source = Source(gone=frozenset({"i212"}))
    dataset_id = new_dataset_id()
    await node["applier"].apply(command("define", dataset_id, definition=definition()))
    await node["materialiser"].run_once()
    dataset = await node["store"].get(dataset_id)
    assert dataset.creation is Creation.ERROR
    assert dataset.creation_error == "instance i212 is no longer in the research Orthanc"
    root = node["root"]
    assert not any(p.exists() for p in (root.dataset_dir(dataset_id), root.staging_dir(dataset_id),
                                        root.bag_dir(dataset_id)))
