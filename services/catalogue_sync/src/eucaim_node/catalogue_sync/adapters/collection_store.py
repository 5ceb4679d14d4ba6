"""Collection aggregates computed from, and stored beside, the catalogue in MongoDB."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from eucaim_node.catalogue.documents import STUDY, StudyDocument
from eucaim_node.catalogue.quality import collection_summary
from eucaim_node.catalogue.reader import CatalogueReader, MongoCatalogueReader
from eucaim_node.store import collections

from ..core.parts import FACETS, PARTS, merge, newest, part_of, part_totals, subject_entry

def aggregate(studies: list[StudyDocument]) -> dict[str, Any]:
    """Everything the node keeps about a collection, from its study documents (pure).

    Facet counts are numbers of *subjects* having the value (what small-cell protection needs);
    ``subject_ages`` is each subject's youngest age, sorted (no keys); ``quality`` sums the studies' data quality.
    """
    subjects: dict[str, dict[str, Any]] = {}
    series = instances = 0
    for doc in studies:
        subject = subjects.setdefault(str(doc.subject_key), defaultdict(set))
        subject["sex"].add(doc.sex_code)
        subject["programme"].add(doc.programme or "unknown")
        subject["cancer_type"].add(doc.cancer_type or "other")
        for name, coded, raw in FACETS:
            subject[name].update(coded(doc))
            subject[name + "_raw"].update(raw(doc))
        if doc.age_years is not None:
            subject["age"].add(doc.age_years)
        series += doc.series_count
        instances += doc.instance_count

    def counts(name: str) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for subject in subjects.values():
            for value in subject[name]:
                if value is not None:
                    result[value] += 1
        return dict(sorted(result.items()))

    ages = sorted(min(s["age"]) for s in subjects.values() if s["age"])
    return {
        "subjects": len(subjects), "studies": len(studies), "series": series, "instances": instances,
        "modalities": sorted(counts("modality_raw")), "body_parts": sorted(counts("body_part_raw")),
        "manufacturers": sorted(counts("manufacturer_raw")),
        "age_range": [ages[0], ages[-1]] if ages else None,
        "sex_counts": counts("sex"), "modality_counts": counts("modality"), "body_part_counts": counts("body_part"),
        "manufacturer_counts": counts("manufacturer"), "subject_ages": ages,
        "quality": collection_summary(doc.quality for doc in studies),
        "programme_counts": counts("programme"), "cancer_type_counts": counts("cancer_type"),
    }


#: Marker (in catalogue-sync's state collection) that every part was built from the catalogue once.
PARTS_BUILT = "collection-parts-built"
#: Attempts of the optimistic update of one part before giving up (then the message is retried).
PART_ATTEMPTS = 20


class PartUpdateConflict(RuntimeError):
    """Concurrent writers kept changing the part; the message is retried."""


def part_id(collection_id: str, part: int) -> str:
    return f"{collection_id}/{part:02d}"


def content_id(part: str, revision: int) -> str:
    """The ``_id`` of one revision of a part's content."""
    return f"{part}@{revision:010d}"


class MongoCollectionStore:
    """Aggregates in parts (decision 0091): a change reads and rewrites one part, then merges PARTS small totals."""

    def __init__(self, db: AsyncDatabase, row_fields: frozenset[str] = frozenset(),
                 catalogue: CatalogueReader | None = None) -> None:
        self._catalogue = catalogue or MongoCatalogueReader(db)
        self._parts = db[collections.CATALOGUE_COLLECTION_PARTS]
        self._totals = db[collections.CATALOGUE_COLLECTION_PART_TOTALS]
        self._places = db[collections.CATALOGUE_SUBJECT_PLACES]
        self._collections = db[collections.CATALOGUE_COLLECTIONS]
        self._state = db[collections.CATALOGUE_SEARCH_STATE]
        self._row_fields = STUDY.require(row_fields | {STUDY.key, STUDY.collection_id, STUDY.subject_key})
        self._cache: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # part → (committed revision, entries)
        self._background: set[asyncio.Future] = set()

    async def update_subject(self, subject_key: str, collection_id: str) -> set[str]:
        """Recompute the subject's entry in this collection and in every collection it had one; the collections
        whose part changed. Idempotent: an entry is recomputed from the catalogue, never incremented."""
        place = await self._places.find_one_and_update(
            {"_id": subject_key}, {"$addToSet": {"collections": collection_id}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        changed = set()
        for collection in sorted(set(place.get("collections") or ()) | {collection_id}):
            if await self._update_part(subject_key, collection):
                changed.add(collection)
        return changed

    async def _update_part(self, subject_key: str, collection_id: str) -> bool:
        """Commit the subject's recomputed entry as the part's next revision.

        A revision's content is inserted as ``<part>@<revision>`` (the insert fails if another writer made that
        revision first; an insert is the one write FerretDB 1.24 does without decoding the collection), then the
        part's small totals document is moved from the previous revision to it (compare-and-set). A writer that crashed in between left a
        complete content document: the next writer moves the totals forward first (roll forward), so no revision
        is lost and none is skipped.
        """
        _id = part_id(collection_id, part_of(subject_key))
        for _ in range(PART_ATTEMPTS):
            # Totals first, catalogue second: a writer that read an older catalogue also read an older revision,
            # so its insert of the next revision fails and it reads again (no stale entry overwrites a fresh one).
            head = await self._totals.find_one({"_id": _id}, {"revision": 1})
            revision = head["revision"] if head else 0
            entries_now = await self._entries(_id, revision)
            entry = subject_entry(subject_key, await self._catalogue.subject_studies(subject_key, collection_id),
                                  self._row_fields)
            others = [e for e in entries_now if e["subject"] != subject_key]
            entries = sorted(others + ([entry] if entry else []), key=lambda e: e["subject"])
            if entries == entries_now:
                # Nothing to change, unless a writer crashed between storing the next revision and moving the
                # totals to it (then this is likely its redelivered event): move them, and look again.
                if await self._roll_forward(_id, collection_id, revision):
                    continue
                return False
            try:
                await self._parts.insert_one({"_id": content_id(_id, revision + 1), "part": _id,
                                              "collection_id": collection_id, "revision": revision + 1,
                                              "entries": entries})
            except DuplicateKeyError:
                # Another writer made this revision first, or crashed before moving the totals to it: move them
                # (a no-op if that writer did), then read again.
                await self._roll_forward(_id, collection_id, revision)
                continue
            if await self._commit(_id, collection_id, revision, entries):
                return True
        raise PartUpdateConflict(f"part {_id} kept changing after {PART_ATTEMPTS} attempts")

    async def _roll_forward(self, _id: str, collection_id: str, revision: int) -> bool:
        """Commit a stored but uncommitted next revision, if there is one; True if there was."""
        pending = await self._parts.find_one({"_id": content_id(_id, revision + 1)})
        if pending is None:
            return False
        await self._commit(_id, collection_id, revision, pending["entries"])
        return True

    async def _entries(self, _id: str, revision: int) -> list[dict[str, Any]]:
        """A committed revision's entries: from this process's cache when it made or read that revision last
        (FerretDB decodes the whole collection even for a read by ``_id``), else from the store."""
        cached = self._cache.get(_id)
        if cached is not None and cached[0] == revision:
            return cached[1]
        current = await self._parts.find_one({"_id": content_id(_id, revision)}) if revision else None
        entries = current["entries"] if current else []
        self._cache[_id] = (revision, entries)
        return entries

    async def _commit(self, _id: str, collection_id: str, revision: int, entries: list[dict[str, Any]],
                      first: bool = False) -> bool:
        """Move the part's totals from ``revision`` to ``revision + 1`` (whose content is stored); False if another
        writer did first. Then the replaced content is deleted (a reader that misses it reads the totals again).
        ``first``: the part has no totals yet (revision 0, or a rebuilt part's starting revision)."""
        doc = {"collection_id": collection_id, "revision": revision + 1, "changed_at": datetime.now(UTC),
               "totals": part_totals(entries)}
        first = first or revision == 0
        try:
            if first:
                await self._totals.insert_one({"_id": _id, **doc})
            elif not (await self._totals.update_one({"_id": _id, "revision": revision}, {"$set": doc})).matched_count:
                return False
        except DuplicateKeyError:
            return False
        self._cache[_id] = (revision + 1, entries)
        if not first:
            # In the background: a delete decodes the whole collection on FerretDB; a reader that misses the old
            # revision reads the totals again, and one left by a crash is removed at the next start.
            self._spawn(self._parts.delete_one({"_id": content_id(_id, revision)}))
        return True

    def _spawn(self, work) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def build_parts_if_missing(self) -> int:
        """At start: build every part from the catalogue in one pass unless that was done (a catalogue written
        before parts existed); the number of studies read. A crash midway builds again: parts written meanwhile
        (by this pass or by consumers, both from the catalogue) are kept."""
        if await self._state.find_one({"_id": PARTS_BUILT}) is not None:
            await self._remove_replaced_revisions()
            return 0
        by_part: dict[str, dict[str, list[StudyDocument]]] = defaultdict(lambda: defaultdict(list))
        places: dict[str, set[str]] = defaultdict(set)
        count = 0
        async for study in self._catalogue.all_studies():
            count += 1
            subject, collection = str(study.subject_key), study.collection_id
            by_part[part_id(collection, part_of(subject))][subject].append(study)
            places[subject].add(collection)
        await self._add_places(places)
        # A collection's version (the sum of its parts' revisions) must go on growing across a rebuild: the stored
        # aggregates keep the highest version seen, so parts restarting at revision 1 would leave them frozen at
        # their pre-rebuild value until as many changes again had been made. Each rebuilt part starts above the
        # collection's stored version instead.
        bases = {d["_id"]: int(d.get("version") or 0) + 1
                 async for d in self._collections.find({}, {"version": 1})}
        existing = {d["_id"] async for d in self._totals.find({}, {"_id": 1})}
        for _id, subjects in by_part.items():
            if _id in existing:
                continue  # a consumer made this part meanwhile, from the catalogue: keep it
            entries = sorted((e for k, v in subjects.items() if (e := subject_entry(k, v, self._row_fields))),
                             key=lambda e: e["subject"])
            collection_id = _id.rsplit("/", 1)[0]
            revision = bases.get(collection_id, 1)
            try:
                await self._parts.insert_one({"_id": content_id(_id, revision), "part": _id,
                                              "collection_id": collection_id, "revision": revision, "entries": entries})
            except DuplicateKeyError:
                continue  # a consumer made this revision meanwhile, from the catalogue: keep it
            if not await self._commit(_id, collection_id, revision - 1, entries, first=True):
                # A consumer made the part between the look above and now: its revision stands, this one goes
                # (unless that consumer rolled this one forward and made it current).
                head = await self._totals.find_one({"_id": _id}, {"revision": 1})
                if head is None or head["revision"] != revision:
                    await self._parts.delete_one({"_id": content_id(_id, revision)})
        try:
            await self._state.insert_one({"_id": PARTS_BUILT, "studies": count, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass
        return count

    async def _add_places(self, places: dict[str, set[str]]) -> None:
        """Inserted in bulk (an update, even by ``_id``, decodes the whole collection on FerretDB); a subject whose
        document a consumer wrote meanwhile gets the collections added to it."""
        rows = [{"_id": subject, "collections": sorted(found)} for subject, found in places.items()]
        for start in range(0, len(rows), 1000):
            try:
                await self._places.insert_many(rows[start:start + 1000], ordered=False)
            except BulkWriteError as exc:
                for error in exc.details.get("writeErrors", ()):
                    row = rows[start + error["index"]]
                    await self._places.update_one({"_id": row["_id"]},
                                                  {"$addToSet": {"collections": {"$each": row["collections"]}}})

    async def _remove_replaced_revisions(self) -> None:
        """Content of revisions no longer current (a delete lost to a crash or a stop): one pass at start."""
        current = {content_id(d["_id"], d["revision"]) async for d in self._totals.find({}, {"revision": 1})}
        stale = [d["_id"] async for d in self._parts.find({}, {"_id": 1}) if d["_id"] not in current]
        # Only revisions older than the current one: a newer one may be a writer's, about to be committed.
        revision_of = {d.rsplit("@", 1)[0]: int(d.rsplit("@", 1)[1]) for d in current}
        old = [i for i in stale if int(i.rsplit("@", 1)[1]) < revision_of.get(i.rsplit("@", 1)[0], 0)]
        if old:
            await self._parts.delete_many({"_id": {"$in": old}})

    async def compute_aggregates(self, collection_id: str) -> tuple[dict[str, Any], datetime | None, int]:
        """(aggregates, newest change, version): the merge of the collection's part totals (PARTS reads by key).
        The version (sum of the parts' revisions) only grows: a later merge never has a lower one."""
        ids = [part_id(collection_id, n) for n in range(PARTS)]
        parts = await self._totals.find({"_id": {"$in": ids}}).to_list(None)
        return (merge([p["totals"] for p in parts]), newest([p.get("changed_at") for p in parts]),
                sum(int(p["revision"]) for p in parts))

    async def save_aggregates(self, collection_id: str, aggregates: dict[str, Any], watermark: datetime | None,
                              version: int) -> bool:
        stamp = watermark or datetime.fromtimestamp(0, UTC)
        update = {"$set": {"aggregates": aggregates, "watermark": stamp, "version": version,
                           "updated_at": datetime.now(UTC)}}
        try:
            result = await self._collections.update_one(
                {"_id": collection_id, "$or": [{"version": {"$lte": version}}, {"version": {"$exists": False}}]},
                update, upsert=True)
        except DuplicateKeyError:
            return False  # the document exists with a newer version: keep it
        return result.matched_count > 0 or result.upserted_id is not None

    async def stored(self, collection_id: str) -> dict[str, Any] | None:
        return await self._collections.find_one({"_id": collection_id})

    async def collection_ids(self) -> list[str]:
        return [d["_id"] async for d in self._collections.find({}, {"_id": 1})]
