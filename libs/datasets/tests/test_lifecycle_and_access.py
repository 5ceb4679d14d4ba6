"""The dataset state machine, grants in time, and the two entry points other services use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eucaim_node.datasets.memory import MemoryStore

from eucaim_node.datasets import (
    Act, Creation, Dataset, DatasetUnavailable, Grant, IllegalTransition, State, StudyRef, WITHDRAWAL,
    holds_open_grant, materialised_path, new_dataset_id, open_grant_count, plan)
from eucaim_node.datasets.layout import DatasetRoot

SUBJECT = "EUCAIM-LOCAL-0123456789abcdef0123"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def dataset(**fields) -> Dataset:
    values = dict(id=new_dataset_id(), name="lung", author="cli:dm@host", provenance={"kind": "studies"},
                  studies=(StudyRef(study_uid="2.25.1", subject=SUBJECT, collection_id="c1", series=("2.25.2",)),))
    return Dataset(**{**values, **fields})


def apply(ds: Dataset, act: Act, reason: str | None = None) -> Dataset:
    change = plan(ds, act, at=T0, reason=reason)
    for key, value in change.expect.items():
        assert getattr(getattr(ds, key), "value", getattr(ds, key)) == getattr(value, "value", value), key
    return ds.model_copy(update=change.updates)


def test_draft_released_published_then_invalidated_and_reactivated():
    ds = dataset(creation=Creation.DONE)
    ds = apply(ds, Act.RELEASE)
    assert ds.state is State.RELEASED and ds.released_at == T0
    ds = apply(ds, Act.PUBLISH)
    assert ds.state is State.PUBLISHED
    ds = apply(ds, Act.INVALIDATE, "wrong series")
    assert ds.invalidated and ds.invalidation_reason == "wrong series" and ds.state is State.PUBLISHED
    ds = apply(ds, Act.REACTIVATE)
    assert not ds.invalidated and ds.invalidation_reason is None and ds.state is State.PUBLISHED


@pytest.mark.parametrize(("fields", "act", "message"), [
    ({"creation": Creation.PENDING}, Act.RELEASE, "not materialised"),
    ({"creation": Creation.DONE, "state": State.RELEASED}, Act.RELEASE, "released version never changes"),
    ({"creation": Creation.DONE}, Act.PUBLISH, "only a released version"),
    ({"creation": Creation.DONE, "state": State.RELEASED, "invalidated": True, "invalidation_reason": "x"},
     Act.PUBLISH, "reactivate it first"),
    ({"creation": Creation.DONE}, Act.REACTIVATE, "not invalidated"),
    ({"invalidated": True, "invalidation_reason": WITHDRAWAL}, Act.REACTIVATE, "consent withdrawal"),
    ({"invalidated": True, "invalidation_reason": "x"}, Act.INVALIDATE, "already invalidated"),
    ({"deleted": True}, Act.INVALIDATE, "deleted"),
])
def test_illegal_transitions_are_refused_with_the_reason(fields, act, message):
    with pytest.raises(IllegalTransition, match=message):
        plan(dataset(**fields), act, at=T0, reason="r")


def test_invalidation_needs_a_reason():
    with pytest.raises(IllegalTransition, match="needs a reason"):
        plan(dataset(), Act.INVALIDATE, at=T0, reason="  ")


def test_every_change_is_a_compare_and_set_on_the_state_it_read():
    change = plan(dataset(creation=Creation.DONE), Act.RELEASE, at=T0)
    assert change.expect == {"state": "draft", "invalidated": False, "deleted": False, "creation": "done"}


def test_a_study_or_series_listed_twice_is_refused():
    ref = StudyRef(study_uid="2.25.1", subject=SUBJECT, collection_id="c1", series=("2.25.2",))
    with pytest.raises(ValueError, match="listed twice"):
        dataset(studies=(ref, ref))
    with pytest.raises(ValueError, match="listed twice"):
        StudyRef(study_uid="2.25.1", subject=SUBJECT, collection_id="c1", series=("2.25.2", "2.25.2"))
    with pytest.raises(ValueError):
        StudyRef(study_uid="../etc", subject=SUBJECT, collection_id="c1", series=("2.25.2",))
    with pytest.raises(ValueError):
        StudyRef(study_uid="2.25.1", subject="../../x", collection_id="c1", series=("2.25.2",))


def test_grant_is_open_only_inside_its_window_and_until_closed():
    grant = Grant(dataset_id=new_dataset_id(), grantee="alice", valid_from=T0, valid_until=T0 + timedelta(days=1),
                  granted_by="dm")
    assert not grant.open_at(T0 - timedelta(seconds=1))
    assert grant.open_at(T0)
    assert not grant.open_at(T0 + timedelta(days=1))
    closed = grant.model_copy(update={"closed_at": T0 + timedelta(hours=1)})
    assert closed.open_at(T0 + timedelta(minutes=59)) and not closed.open_at(T0 + timedelta(hours=1))


async def test_holds_open_grant_for_user_or_project_on_a_usable_dataset_only():
    store = MemoryStore()
    ds = dataset(creation=Creation.DONE)
    await store.insert(ds)
    await store.add_grant(Grant(dataset_id=ds.id, grantee="alice", valid_from=T0, valid_until=T0 + timedelta(days=1),
                                granted_by="dm"))
    await store.add_grant(Grant(dataset_id=ds.id, grantee="project:lungs", valid_from=T0,
                                valid_until=T0 + timedelta(days=1), granted_by="dm"))
    noon = T0 + timedelta(hours=12)
    assert await holds_open_grant(store, "alice", ds.id, at=noon)
    assert not await holds_open_grant(store, "bob", ds.id, at=noon)
    assert await holds_open_grant(store, "bob", ds.id, projects=["lungs"], at=noon)
    assert not await holds_open_grant(store, "alice", ds.id, at=T0 + timedelta(days=2))
    assert not await holds_open_grant(store, "alice", new_dataset_id(), at=noon)
    assert not await holds_open_grant(store, "alice", "../x", at=noon)
    assert await open_grant_count(store, ds.id, at=noon) == 2
    await store.update(ds.id, {"invalidated": False}, {"invalidated": True, "invalidation_reason": "x"})
    assert not await holds_open_grant(store, "alice", ds.id, at=noon)


async def test_materialised_path_only_for_a_materialised_valid_dataset_on_disk(tmp_path):
    store = MemoryStore()
    pending = dataset()
    done = dataset(creation=Creation.DONE)
    for ds in (pending, done):
        await store.insert(ds)
    with pytest.raises(DatasetUnavailable, match="not materialised"):
        await materialised_path(store, tmp_path, pending.id)
    with pytest.raises(DatasetUnavailable, match="not on disk"):
        await materialised_path(store, tmp_path, done.id)
    directory = DatasetRoot(tmp_path).dataset_dir(done.id)
    directory.mkdir()
    (directory / "index.json").write_text("[]")
    assert await materialised_path(store, tmp_path, done.id) == directory
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        await materialised_path(store, tmp_path, new_dataset_id())
    with pytest.raises(DatasetUnavailable, match="not a dataset ID"):
        await materialised_path(store, tmp_path, "../../etc")
    await store.update(done.id, {}, {"invalidated": True, "invalidation_reason": WITHDRAWAL})
    with pytest.raises(DatasetUnavailable, match="invalidated"):
        await materialised_path(store, tmp_path, done.id)


def test_naive_datetimes_from_a_non_tz_aware_client_are_read_as_utc():
    doc = Grant(dataset_id=new_dataset_id(), grantee="alice", valid_from=T0, valid_until=T0 + timedelta(days=1),
                granted_by="dm").to_document()
    naive = {k: (v.replace(tzinfo=None) if isinstance(v, datetime) else v) for k, v in doc.items()}
    assert Grant.from_document(naive).open_at(T0 + timedelta(hours=1))


def test_stored_documents_have_no_dotted_keys():
    """MongoDB refuses keys with dots; UIDs are full of them, so they must only ever be values."""
    from eucaim_node.datasets.model import Hashes, StudyHash

    ds = dataset(hashes=Hashes(index="i", images="m", clinical="c", studies=(StudyHash(study_id="2.25.1", hash="h"),),
                               manifest_sha256="0" * 64, files=1, bytes=1))

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from keys(v)

    assert not [k for k in keys(ds.to_document()) if "." in k]
